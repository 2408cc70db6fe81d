"""chute.toml -> a typed, validated Project.

Every error names the file, the key and what was expected, so a user can fix it without
reading code. Paths in the file are relative to the project folder.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
import tomllib
from pathlib import Path
from string import Template
from typing import Any, Literal

from pydantic import StrictBool, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from chute.coltypes import ColumnType, parse_type
from chute.errors import ConfigError
from chute.config.extract import Extracts
from chute.config.follow import Follow
from chute.config.steps import Step
from chute.config.checks import check_types
from chute.config.contracts import Contract

# The fields a [[notify]] subject or body may name (chute.notify.message fills them in).
TEMPLATE_FIELDS = ("pipeline", "status", "outcome", "run_id", "trigger", "files", "files_loaded", "files_failed",
          "files_skipped", "files_unchanged", "rows_loaded", "rows_rejected", "duration", "errors", "error",
          "host", "log")


def check_template(text: str) -> None:
    template = Template(text)
    if not template.is_valid():
        raise ValueError(f"not a valid template (write $$ for a literal $): {text!r}")
    unknown = sorted(set(template.get_identifiers()) - set(TEMPLATE_FIELDS))
    if unknown:
        raise ValueError(f"unknown template field(s) {', '.join(unknown)}; known: {', '.join(TEMPLATE_FIELDS)}")


CONFIG_NAME = "chute.toml"

# The text read as NULL unless [source] null_values / `chute load --null` replace it
# (docs/reading-files.md#null-markers). An empty unquoted field is always NULL; a quoted one ("NA")
# is always text. pandas' default list without 'None' (a real answer: a town, "Allergies: None")
# and without the spellings only old C runtimes wrote (-1.#IND, 1.#QNAN, #N/A N/A, #NA, -NaN).
DEFAULT_NULLS: tuple[str, ...] = ("", "NA", "N/A", "n/a", "#N/A", "NULL", "null", "NaN", "nan", "<NA>")


_INTERVAL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_INTERVAL_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_interval(text: str) -> float:
    """'90s', '30m', '1h', '2d', '1w' -> seconds; ValueError naming the accepted forms otherwise."""
    match = _INTERVAL.match(text)
    if not match or float(match[1]) <= 0:
        raise ValueError(f"not an interval: {text!r}; write a number and a unit: 90s, 30m, 1h, 2d, 1w")
    return float(match[1]) * _INTERVAL_SECONDS[match[2]]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProjectInfo(_Strict):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")


class Landing(_Strict):
    path: str = "landing"
    patterns: list[str] = Field(["*.csv"], min_length=1)
    recursive: StrictBool = True

    @field_validator("patterns", mode="before")
    @classmethod
    def _one_pattern(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value  # patterns = "*.csv" means ["*.csv"]
    # "file": every matching file is taken as it lands. "marker": a folder (batch) is taken only
    # once its marker file lands, all its files in one run (folders and S3; docs/watch.md, docs/s3.md).
    trigger: Literal["file", "marker"] = "file"
    marker: str = Field(".SUCCESS", min_length=1, pattern=r"^[^/]+$")


class Source(_Strict):
    """How the landing files are read."""

    # json: an array of objects or an object holding one (read whole); jsonl: one object a line
    format: Literal["csv", "excel", "json", "jsonl", "parquet"] = "csv"
    sheet: str | int | None = None  # excel: a sheet name or 0-based index (default: the first sheet)
    header: StrictBool = True
    delimiter: str = Field(",", min_length=1, max_length=1)
    quote: str = Field('"', min_length=1, max_length=1)
    encoding: str = "utf-8"
    compression: Literal["auto", "none", "gzip", "bz2", "xz", "zstd"] = "auto"
    # Unquoted fields read as NULL (see DEFAULT_NULLS); the empty field is always one of them.
    null_values: list[str] = list(DEFAULT_NULLS)
    # Date/time formats by column (strftime/chrono codes, e.g. "%d/%m/%Y"); [source.formats] in chute.toml
    formats: dict[str, str] = {}
    # Declared types by column name. With header = false they also name the columns in order;
    # with neither, columns are named f0, f1, ...
    columns: dict[str, str] = {}
    # Column holding each row's file name (relative to the landing zone), for nodes and lineage.
    file_column: str = "source_file"
    # A file whose bytes were loaded already under another name: skip it only when its name makes
    # no difference to the rows (auto: the nodes are run under both names and the outputs compared),
    # always (skip), or never (load: a file is its name and its content). See docs/how-it-works.md.
    same_content: Literal["auto", "skip", "load"] = "auto"
    # A zero-byte file: failed (the default: a truncated upload or a broken export looks just
    # like that), or loaded with 0 rows. A file with a header and no rows always loads (0 rows;
    # [tables.NAME.contract] min_rows makes it fail).
    empty_files: Literal["fail", "load"] = "fail"
    # Input bytes per batch: small files are grouped up to this size, big ones are split.
    batch_mb: float = Field(64, gt=0)
    pii_columns: list[str] = []
    # Only these columns of the files (by the file's names; default: all), e.g. 200 of a 2,000-column file
    select: list[str] = []
    # The file's column names -> the table's (chute load --names normalize writes it; chute.toml may too)
    rename: dict[str, str] = {}
    # jsonl: nested objects become columns named parent<separator>child, or stay JSON text.
    nested: Literal["flatten", "json"] = "flatten"
    nested_separator: str = "_"

    @field_validator("columns")
    @classmethod
    def _types_parse(cls, value: dict[str, str]) -> dict[str, str]:
        return check_types(value)

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        import codecs

        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown encoding {value!r}") from None
        return value

    def column_types(self) -> dict[str, ColumnType]:
        return {name: parse_type(text) for name, text in self.columns.items()}

    def nulls(self) -> list[str]:
        """The null markers as the reader applies them: the empty field first, then the rest once each."""
        return list(dict.fromkeys(["", *self.null_values]))


class KedroPipeline(_Strict):
    """[pipeline.kedro]: a Kedro project's pipeline run as chute nodes (chute.pipeline.kedro)."""

    # "<package>.pipeline_registry:<name>" (a name of register_pipelines(), or a module's Pipeline
    # attribute or function), or just a name of the project's own registry ("__default__")
    pipeline: str = "__default__"
    project: str = "."  # the Kedro project folder: pyproject.toml with [tool.kedro], conf/, src/
    env: str | None = None  # Kedro's configuration environment over conf/base (Kedro's default: local)
    frames: Literal["pandas", "polars"] = "pandas"  # what its nodes receive for a frame dataset


class PipelineConfig(_Strict):
    module: str | None = None  # a .py file in the project; None means the input goes straight to its table
    input: str = "rows"  # the dataset name the landing files feed (with kedro: the Kedro dataset they bind to)
    steps: list[Step] = []  # built-in transforms, run as nodes (see docs/transforms.md)
    kedro: KedroPipeline | None = None  # `kedro = "pkg.pipeline_registry:name"` or a [pipeline.kedro] table

    @field_validator("kedro", mode="before")
    @classmethod
    def _kedro_shorthand(cls, value: Any) -> Any:
        return {"pipeline": value} if isinstance(value, str) else value


class Table(_Strict):
    mode: Literal["append", "replace", "merge"] = "append"
    primary_key: list[str] = []
    # Column -> type. Left out (or empty), the types are inferred from the first rows bound for the
    # table (as `chute load` infers them) when the run that brings them creates the table, and
    # from then on the table's columns are the declaration (docs/configuration.md#inferred-columns).
    columns: dict[str, str] = {}
    # Inferred tables only: the data's column names in snake_case (as `chute load`), or as they are.
    names: Literal["normalize", "keep"] = "normalize"
    schema_: str = Field("public", alias="schema")
    export: str | None = None  # CSV path (relative to the project) rewritten from the table after each load
    foreign_keys: dict[str, str] = {}  # column -> "table.column" of another configured table
    contract: Contract | None = None  # checks, drift policy and reject thresholds (quality/contracts.py)
    # How often the table is expected to change ("90s", "30m", "1h", "2d", "1w"): the dashboard
    # warns when no run has written to it for longer. None: no expectation, no warning.
    fresh_within: str | None = None

    @field_validator("columns")
    @classmethod
    def _types_parse(cls, value: dict[str, str]) -> dict[str, str]:
        return check_types(value)

    @model_validator(mode="after")
    def _key_is_declared(self) -> "Table":
        if self.mode == "merge" and not self.primary_key:
            raise ValueError("mode = 'merge' needs a primary_key"
                             + (" (the columns that identify a row; with inferred columns, name them as the "
                                "table will: in snake_case unless names = 'keep')" if not self.columns else ""))
        if not self.columns:  # inferred: the key and foreign keys are checked against the inferred columns
            return self
        missing = [c for c in self.primary_key if c not in self.columns]
        if missing:
            raise ValueError(f"primary_key names undeclared columns: {', '.join(missing)}")
        undeclared = [c for c in self.foreign_keys if c not in self.columns]
        if undeclared:
            raise ValueError(f"foreign_keys names undeclared columns: {', '.join(undeclared)}")
        return self

    @field_validator("fresh_within")
    @classmethod
    def _interval_parses(cls, value: str | None) -> str | None:
        if value is not None:
            parse_interval(value)
        return value

    def column_types(self) -> dict[str, ColumnType]:
        return {name: parse_type(text) for name, text in self.columns.items()}

    @property
    def inferred(self) -> bool:
        """Whether chute.toml leaves the columns to inference (the table fixes them once created)."""
        return not self.columns

    def fresh_seconds(self) -> float | None:
        """fresh_within in seconds, None when the table has no expected interval."""
        return parse_interval(self.fresh_within) if self.fresh_within else None


class Database(_Strict):
    url: str | None = None  # a URL, or env:VAR to read it from the environment


class S3(_Strict):
    """An S3 landing zone's event plumbing, created by `chute s3 setup` (see docs/s3.md)."""

    queue: str | None = None  # SQS queue of the bucket's ObjectCreated events; default chute-<project>
    dead_letter_queue: str | None = None  # where events go after max_receive_count failures; default <queue>-dlq
    max_receive_count: int = Field(5, ge=1, le=1000)
    visibility_timeout: int = Field(900, ge=0, le=43200)  # seconds a received event is hidden while its run goes
    wait_seconds: int = Field(20, ge=0, le=20)  # SQS long polling
    poll_interval: float = Field(300, gt=0)  # seconds between fallback listings (events can be lost or late)
    retry_after: int = Field(30, ge=0, le=43200)  # seconds before an event whose run failed is received again

    def queue_name(self, project: str) -> str:
        return self.queue or f"chute-{project}"

    def dead_letter_name(self, project: str) -> str:
        return self.dead_letter_queue or f"{self.queue_name(project)}-dlq"


class RunLog(_Strict):
    """A JSON document per run: in the project, and in the bucket for an S3 landing zone."""

    enabled: StrictBool = True
    folder: str = "logs"  # relative to the project: logs/run-<id>.json
    s3_prefix: str = "logs/"  # key prefix in the landing bucket ('' = do not upload)


class Notify(_Strict):
    """One [[notify]] entry: where to tell how a run went (see docs/notifications.md)."""

    kind: Literal["email", "sns", "webhook"]
    on: Literal["success", "failure", "always"] = "always"
    subject: str | None = None  # string.Template: $pipeline $status $outcome $files ... (docs/notifications.md)
    body: str | None = None
    attempts: int = Field(3, ge=1, le=10)  # tries before a notification is given up (logged, the run goes on)
    timeout: float = Field(10, gt=0)
    # email
    to: list[str] = []
    sender: str | None = Field(None, alias="from")
    smtp_host: str | None = None
    smtp_port: int | None = Field(None, ge=1, le=65535)  # default 587 (starttls), 465 (ssl), 25 (none)
    tls: Literal["starttls", "ssl", "none"] = "starttls"
    username_env: str | None = None  # names of environment variables, never the values
    password_env: str | None = None
    # sns
    topic_arn: str | None = None
    # webhook
    url: str | None = None
    url_env: str | None = None  # a Slack webhook URL is a secret: prefer this

    @field_validator("to", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("subject", "body")
    @classmethod
    def _known_fields(cls, value: str | None) -> str | None:
        if value is not None:
            check_template(value)
        return value

    @model_validator(mode="after")
    def _kind_has_what_it_needs(self) -> "Notify":
        needs = {"email": ("to", "smtp_host"), "sns": ("topic_arn",), "webhook": ()}[self.kind]
        missing = [k for k in needs if not getattr(self, k)]
        if self.kind == "webhook" and not (self.url or self.url_env):
            missing.append("url (or url_env)")
        if missing:
            raise ValueError(f"kind = {self.kind!r} needs {', '.join(missing)}")
        return self


class Watch(_Strict):
    """`chute watch`: how events become runs, retries, claims, dead letters."""

    debounce: float = Field(0.05, ge=0)  # seconds of quiet awaited before a run (events queued meanwhile join it)
    settle: float = Field(2.0, gt=0)  # seconds a file's size must stay unchanged when no close-after-write event came
    lease: float = Field(300, gt=0)  # seconds a worker's claim on a file lasts without renewal
    # Files a worker claims at a time (smaller: workers share more evenly; each claim is at
    # least one transaction; by default a claim is bounded by the unit size, 1 GiB of input).
    claim_files: int = Field(100_000, ge=1)
    rescan: float = Field(60, gt=0)  # seconds between full looks at the zone (missed events, lapsed claims)
    # Micro-batches (docs/streaming.md): with max_batch_delay set, a run starts when its first
    # file has waited that many seconds or max_batch_files files are in hand, whichever comes
    # first (debounce then plays no part); unset, runs start after `debounce` seconds of quiet.
    max_batch_delay: float | None = Field(None, ge=0)
    max_batch_files: int | None = Field(None, ge=1)  # also caps a debounced run's events
    max_attempts: int = Field(3, ge=1)  # failed attempts of one file version before it is a dead letter
    retry_attempts: int = Field(5, ge=1)  # tries of a run hit by a transient error (database down, network)
    retry_initial: float = Field(0.5, gt=0)  # seconds before the first retry; doubles each time, with jitter
    retry_max: float = Field(30, gt=0)  # the longest wait between two retries
    metrics_port: int | None = Field(None, ge=0, le=65535)  # Prometheus /metrics on 127.0.0.1; None = off


class Aws(_Strict):
    """[aws]: how the generated AWS stack (chute deploy aws) spreads a batch (docs/deploy-aws.md)."""

    files_per_child: int = Field(25, ge=1, le=1000)  # landing files per child execution of the Distributed Map
    child_mb: float = Field(512, gt=0)  # and at most this many megabytes of them
    map_concurrency: int = Field(10, ge=1, le=10000)  # children at once (the Map's MaxConcurrency)
    # Load functions at once: their reserved concurrency, so at most 2x this many database sessions.
    load_concurrency: int = Field(4, ge=1, le=1000)
    tolerated_failure_percentage: float = Field(5.0, ge=0, le=100)  # children that may fail before the Map does
    rds_proxy: bool = False  # put an RDS Proxy between the functions and the database
    database_auth: Literal["password", "iam"] = "password"  # iam: a token from rds generate-db-auth-token
    load_runner: Literal["lambda", "fargate"] = "lambda"  # fargate: a child runs as one ECS task (no 15 min limit)
    fargate_cpu: int = Field(2048, ge=256)
    fargate_memory_mb: int = Field(8192, ge=512)


class Schedule(_Strict):
    """A cron schedule that starts runs (croniter syntax; a 6th field is seconds)."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    cron: str
    missed: Literal["report", "run"] = "report"  # missed while down: only record it, or record and run once
    extract: list[str] = []  # [extract.NAME]s to run (into the landing zone) before the run this fire starts

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        from croniter import croniter

        if not croniter.is_valid(value):
            raise ValueError(f"not a cron expression: {value!r}")
        return value


class Project(_Strict):
    """A loaded project. `root` is the folder holding chute.toml."""

    project: ProjectInfo
    landing: Landing = Landing()
    source: Source = Source()
    pipeline: PipelineConfig = PipelineConfig()
    params: dict[str, Any] = {}
    references: dict[str, str] = {}  # name -> file in the project; nodes receive a Path
    tables: dict[str, Table] = {}
    database: Database = Database()
    watch: Watch = Watch()
    schedules: list[Schedule] = []
    follow: Follow | None = None  # [follow]: a stage of a chain, run by the messages of the one it follows (chute.chain)
    extract: Extracts = {}  # [extract.NAME]: database / API extractions into the landing zone (chute.extract)
    s3: S3 = S3()
    aws: Aws = Aws()
    run_log: RunLog = RunLog()
    notify: list[Notify] = []
    root: Path = Path(".")

    @model_validator(mode="after")
    def _foreign_keys_resolve(self) -> "Project":
        for name, table in self.tables.items():
            for column, ref in table.foreign_keys.items():
                parent, _, parent_column = ref.partition(".")
                target = self.tables.get(parent)
                if target is None or target.primary_key != [parent_column]:
                    raise ValueError(f"tables.{name}.foreign_keys.{column} = {ref!r}: name a configured table "
                                     "and its one-column primary key, as 'table.column'")
        return self

    @model_validator(mode="after")
    def _scheduled_extracts_exist(self) -> "Project":
        for s in self.schedules:
            unknown = [n for n in s.extract if n not in self.extract]
            if unknown:
                raise ValueError(f"schedules {s.name!r}: extract names no [extract.NAME] section: {', '.join(unknown)}")
        return self

    @property
    def name(self) -> str:
        return self.project.name

    def path(self, relative: str) -> Path:
        return (self.root / relative).resolve()

    @property
    def landing_path(self) -> Path:
        return self.path(self.landing.path)

    @property
    def state_dir(self) -> Path:
        """Where chute keeps local state (the embedded database) for this project."""
        return self.root / ".chute"

    def configured_database_url(self) -> str | None:
        url = self.database.url
        if url and url.startswith("env:"):
            var = url[4:]
            value = os.environ.get(var)
            if not value:
                raise ConfigError(f"{CONFIG_NAME}: [database] url = 'env:{var}' but ${var} is not set")
            return value
        return url


def load_project(folder: str | os.PathLike[str]) -> Project:
    root = Path(folder).resolve()
    config = root / CONFIG_NAME
    if not config.is_file():
        raise ConfigError(f"no {CONFIG_NAME} in {root} (create a project with `chute init`)")
    try:
        data = tomllib.loads(config.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{config}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{config}: not UTF-8 text") from None
    return project_from_dict(data, root, origin=str(config))


def project_from_dict(data: dict[str, Any], root: Path, origin: str = CONFIG_NAME) -> Project:
    try:
        return Project.model_validate({**data, "root": root})
    except ValidationError as exc:
        raise ConfigError(f"{origin}: invalid configuration\n{_describe(exc)}") from None


def _describe(exc: ValidationError) -> str:
    """pydantic's errors in the words of chute.toml: where, what is wrong, and how to fix it."""
    lines = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        kind, value = error["type"], error.get("input")
        message = error["msg"].removeprefix("Value error, ")
        if kind == "extra_forbidden":
            near = difflib.get_close_matches(loc[-1], _keys_at(loc[:-1]) or _known_keys(), n=1, cutoff=0.6)
            message = (f"unknown key{f' (did you mean {near[0]!r}?)' if near else ''}; "
                       "see docs/configuration.md")
        elif kind == "missing":
            message = "required key is missing"
        elif kind == "union_tag_invalid":  # [[pipeline.steps]] op = "dorp"
            tags = re.findall(r"'([^']+)'", error["ctx"].get("expected_tags", "")) if error.get("ctx") else []
            tag = str(error.get("ctx", {}).get("tag", value))
            near = difflib.get_close_matches(tag, tags, n=1)
            message = (f"unknown {error['ctx'].get('discriminator', 'kind').strip(chr(39))} {tag!r}"
                       + (f" (did you mean {near[0]!r}?)" if near else "") + f"; one of: {', '.join(tags)}")
        elif kind in _EXPECTED:
            message = f"expected {_EXPECTED[kind]}, got {_shown(value)}"
        lines.append(f"  - {'.'.join(loc) or '(top level)'}: {message}")
    return "\n".join(lines)


_EXPECTED = {
    "list_type": "a list (in TOML: [\"a\", \"b\"])", "dict_type": "a table (in TOML: {key = value} or [section])",
    "bool_type": "true or false (without quotes)", "int_type": "a whole number", "int_parsing": "a whole number",
    "float_type": "a number", "float_parsing": "a number", "string_type": "text in quotes",
}  # others (literal_error, a value out of range...) keep pydantic's message: it names the allowed values


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@functools.cache
def _known_keys() -> tuple[str, ...]:
    """Every key chute.toml may hold, at any level (for "did you mean")."""
    keys: set[str] = set()
    seen: set[type] = set()

    def walk(model: type[BaseModel]) -> None:
        if model in seen:
            return
        seen.add(model)
        for name, field in model.model_fields.items():
            keys.add(field.alias or name)
            for arg in _types_in(field.annotation):
                if isinstance(arg, type) and issubclass(arg, BaseModel):
                    walk(arg)

    walk(Project)
    return tuple(sorted(keys))


def _keys_at(path: list[str]) -> list[str]:
    """The keys allowed where `path` (a location in chute.toml) leads; [] where it cannot tell."""
    models: list[type[BaseModel]] = [Project]
    for part in path:
        inner = []
        for model in models:
            field = model.model_fields.get(part) or next(
                (f for f in model.model_fields.values() if f.alias == part), None)
            if field is not None:
                inner += [t for t in _types_in(field.annotation) if isinstance(t, type) and issubclass(t, BaseModel)]
        if not inner:  # a dict key or a list index: the models stay those of the value
            if part.isdigit() or models != [Project]:
                continue
            return []
        models = inner
    return sorted({f.alias or n for m in models for n, f in m.model_fields.items()})


def _types_in(annotation: Any) -> list[Any]:
    from typing import get_args

    found, todo = [], [annotation]
    while todo:
        item = todo.pop()
        found.append(item)
        todo.extend(get_args(item))
    return found
