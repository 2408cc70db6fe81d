"""The flat SAM template split into nested stacks (`chute deploy aws --nested`, seed 003's layout).

    template.yaml               the root: the parameters, rules and outputs, and one
                                AWS::CloudFormation::Stack per child (TemplateURL is a local
                                path that `sam build` / `sam package` upload)
    stack-storage.yaml          key, buckets, queues, topics, network, database, log groups
    stack-iam.yaml              the roles
    stack-functions.yaml        the functions, the state machine, event rules, schedules
    stack-alarms.yaml           the CloudWatch alarms

It post-processes the flat template, so both variants hold the same resources with the same
properties. The references between resources (Ref, Fn::GetAtt, ${X} and ${X.Attr} in Fn::Sub,
DependsOn) form a graph; each resource wants the stack of its kind (KIND_STACK), but never
sits in a stack before one it depends on: it goes to the latest of its own stack and its
dependencies' stacks. The child stacks therefore depend one way only, in the order of STACKS
(a role that names a function's ARN, such as the state machine's, moves to the functions'
stack, and so does a queue policy naming an event rule): no cycle by construction.

A reference across stacks becomes a parameter of the consumer, fed by the root from an output
of the producer (Fn::GetAtt Child.Outputs.Name). A conditional resource's output is
Fn::If [condition, value, ""] so that it always exists. AWS::StackName in a child is the
root's name (parameter ParentStackName): names built from it are the flat template's.
"""

from __future__ import annotations

import copy
import re
from typing import Any

Json = dict[str, Any]

STACKS = ["Storage", "Iam", "Functions", "Alarms"]
KIND_STACK = {
    "AWS::IAM::Role": "Iam", "AWS::IAM::Policy": "Iam", "AWS::IAM::ManagedPolicy": "Iam",
    "AWS::Serverless::Function": "Functions", "AWS::Serverless::StateMachine": "Functions",
    "AWS::Lambda::Function": "Functions", "AWS::Lambda::Permission": "Functions",
    "AWS::Lambda::EventSourceMapping": "Functions", "AWS::Events::Rule": "Functions",
    "AWS::Scheduler::Schedule": "Functions", "AWS::StepFunctions::StateMachine": "Functions",
    "AWS::ECS::Cluster": "Functions", "AWS::ECS::TaskDefinition": "Functions",
    "AWS::CloudWatch::Alarm": "Alarms",
}  # anything else: Storage
PARENT = "ParentStackName"
_SUB_VAR = re.compile(r"\$\{([^!][^}]*)\}")


def stack_file(stack: str) -> str:
    return f"stack-{stack.lower()}.yaml"


def _sub_names(node: Any) -> tuple[str, dict]:
    """The string of a Fn::Sub and its own variables (which are not references)."""
    if isinstance(node, list):
        return node[0], node[1] if len(node) > 1 else {}
    return node, {}


def references(node: Any) -> set[tuple[str, str | None]]:
    """(name, attribute or None) for every Ref, Fn::GetAtt and ${...} in Fn::Sub under node."""
    found: set[tuple[str, str | None]] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add((value, None))
            elif key == "Fn::GetAtt":
                parts = value.split(".", 1) if isinstance(value, str) else value
                found.add((parts[0], parts[1] if isinstance(parts[1], str) else None))
            elif key == "Fn::Sub":
                text, variables = _sub_names(value)
                for name in _SUB_VAR.findall(text):
                    base, _, attribute = name.partition(".")
                    if base not in variables:
                        found.add((base, attribute or None))
                found |= references(variables)
            else:
                found |= references(value)
    elif isinstance(node, list):
        for item in node:
            found |= references(item)
    return found


def conditions_used(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("Condition",) and isinstance(value, str):
                found.add(value)
            elif key == "Fn::If" and isinstance(value, list):
                found.add(value[0])
                found |= conditions_used(value[1:])
            else:
                found |= conditions_used(value)
    elif isinstance(node, list):
        for item in node:
            found |= conditions_used(item)
    return found


def _depends_on(resource: Json) -> list[str]:
    value = resource.get("DependsOn", [])
    return [value] if isinstance(value, str) else list(value)


def dependencies(template: Json) -> dict[str, set[str]]:
    """Resource -> the resources it references or depends on."""
    resources = template["Resources"]
    return {name: ({n for n, _ in references(body) if n in resources} | set(_depends_on(body))) - {name}
            for name, body in resources.items()}


def partition(template: Json) -> dict[str, str]:
    """Resource -> its stack: its kind's stack, or a later one that holds one of its dependencies."""
    from graphlib import TopologicalSorter

    graph = dependencies(template)
    placed: dict[str, str] = {}
    for name in TopologicalSorter(graph).static_order():
        wanted = KIND_STACK.get(template["Resources"][name]["Type"], "Storage")
        placed[name] = max([wanted, *(placed[d] for d in graph[name])], key=STACKS.index)
    return placed


def _param_name(name: str, attribute: str | None) -> str:
    return name + (re.sub(r"[^A-Za-z0-9]", "", attribute) if attribute else "Ref")


def _rewrite(node: Any, local: set[str], foreign: dict[str, str] | None, mapping: dict) -> Any:
    """Replace references to resources outside `local` through `mapping` ((name, attr) -> replacement)
    and AWS::StackName with the parent's name when in a child (foreign is None in the root)."""
    if isinstance(node, list):
        return [_rewrite(item, local, foreign, mapping) for item in node]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        (key, value), = node.items()
        if key == "Ref" and isinstance(value, str):
            if value == "AWS::StackName" and foreign is not None:
                return {"Ref": PARENT}
            if (value, None) in mapping:
                return mapping[(value, None)]
        if key == "Fn::GetAtt":
            parts = value.split(".", 1) if isinstance(value, str) else value
            if (parts[0], parts[1]) in mapping:
                return mapping[(parts[0], parts[1])]
        if key == "Fn::Sub":
            text, variables = _sub_names(value)

            def swap(match: re.Match) -> str:
                inner = match.group(1)
                base, _, attribute = inner.partition(".")
                if inner == "AWS::StackName" and foreign is not None:
                    return "${" + PARENT + "}"
                if base in variables:
                    return match.group(0)
                target = mapping.get((base, attribute or None))
                if target is None:
                    return match.group(0)
                return "${" + target["Ref"] + "}" if "Ref" in target else match.group(0)

            text = _SUB_VAR.sub(swap, text)
            variables = _rewrite(variables, local, foreign, mapping)
            return {"Fn::Sub": [text, variables] if variables else text}
    return {k: _rewrite(v, local, foreign, mapping) for k, v in node.items()}


def split(flat: Json) -> tuple[Json, dict[str, Json]]:
    """The root template and the child templates (file name -> template) of the flat template."""
    resources = flat["Resources"]
    parameters = flat.get("Parameters", {})
    conditions = flat.get("Conditions", {})
    placed = partition(flat)
    stacks = [s for s in STACKS if s in placed.values()]
    members = {s: {n for n, p in placed.items() if p == s} for s in stacks}

    # Every cross-stack reference: (producer stack, name, attribute) -> output name.
    outputs: dict[str, Json] = {s: {} for s in stacks}
    inputs: dict[str, Json] = {s: {} for s in stacks}  # parameter -> (producer, output)

    def export(name: str, attribute: str | None) -> str:
        producer = placed[name]
        output = _param_name(name, attribute)
        value = {"Ref": name} if attribute is None else {"Fn::GetAtt": [name, attribute]}
        condition = resources[name].get("Condition")
        if condition:
            value = {"Fn::If": [condition, value, ""]}
        outputs[producer][output] = {"Value": value}
        return output

    after: dict[str, set[str]] = {s: set() for s in stacks}  # DependsOn across stacks, kept in the root
    children: dict[str, Json] = {}
    for stack in stacks:
        local = members[stack]
        body = {n: copy.deepcopy(resources[n]) for n in resources if n in local}
        mapping: dict = {}
        for name in body:
            for other, attribute in references(body[name]):
                if other in resources and other not in local:
                    output = export(other, attribute)
                    inputs[stack][output] = (placed[other], output)
                    mapping[(other, attribute)] = {"Ref": output}
            kept = [d for d in _depends_on(body[name]) if d in local]
            after[stack] |= {placed[d] for d in _depends_on(body[name]) if d not in local}
            if "DependsOn" in body[name]:
                if kept:
                    body[name]["DependsOn"] = kept
                else:
                    del body[name]["DependsOn"]
        body = _rewrite(body, local, {}, mapping)
        children[stack] = body

    for stack in stacks:
        body = children[stack]
        used_conditions = _closure(conditions_used(body), conditions)
        refs = {n for n, _ in references(body)} | {n for c in used_conditions for n, _ in references(conditions[c])}
        child_parameters: Json = {}
        if PARENT in refs:
            child_parameters[PARENT] = {"Type": "String", "Description": "The root stack's name"}
        for name in parameters:
            if name in refs:
                child_parameters[name] = copy.deepcopy(parameters[name])
                child_parameters[name].pop("Default", None)  # the root always passes it
        for name in sorted(inputs[stack]):
            child_parameters[name] = {"Type": "String", "Description": f"From the {inputs[stack][name][0]} stack"}
        child: Json = {"AWSTemplateFormatVersion": flat["AWSTemplateFormatVersion"]}
        if "Transform" in flat and any(r["Type"].startswith("AWS::Serverless::") for r in body.values()):
            child["Transform"] = flat["Transform"]
        child["Description"] = f"{flat.get('Description', '')} Nested stack: {stack}.".strip()
        if "Metadata" in flat:
            child["Metadata"] = copy.deepcopy(flat["Metadata"])
        if child_parameters:
            child["Parameters"] = child_parameters
        if used_conditions:
            child["Conditions"] = {c: copy.deepcopy(conditions[c]) for c in conditions if c in used_conditions}
        child["Resources"] = body
        children[stack] = child

    # The root's own outputs read the children's.
    root_mapping: dict = {}
    for output in flat.get("Outputs", {}).values():
        for name, attribute in references(output):
            if name in resources:
                root_mapping[(name, attribute)] = {
                    "Fn::GetAtt": [f"{placed[name]}Stack", f"Outputs.{export(name, attribute)}"]}
    for stack in stacks:
        if outputs[stack]:
            children[stack]["Outputs"] = {k: outputs[stack][k] for k in sorted(outputs[stack])}

    root_resources: Json = {}
    for stack in stacks:
        passed: Json = {}
        for name, spec in children[stack].get("Parameters", {}).items():
            if name == PARENT:
                passed[name] = {"Ref": "AWS::StackName"}
            elif name in inputs[stack]:
                producer, output = inputs[stack][name]
                passed[name] = {"Fn::GetAtt": [f"{producer}Stack", f"Outputs.{output}"]}
            elif spec["Type"].startswith("List<") or spec["Type"] == "CommaDelimitedList":
                passed[name] = {"Fn::Join": [",", {"Ref": name}]}
            else:
                passed[name] = {"Ref": name}
        properties: Json = {"TemplateURL": stack_file(stack)}
        if passed:
            properties["Parameters"] = passed
        root_resources[f"{stack}Stack"] = {"Type": "AWS::CloudFormation::Stack", "Properties": properties}
        fed = {producer for producer, _ in inputs[stack].values()}
        if after[stack] - fed:
            root_resources[f"{stack}Stack"]["DependsOn"] = [f"{s}Stack" for s in stacks if s in after[stack] - fed]
    root: Json = {key: copy.deepcopy(value) for key, value in flat.items()
                  if key not in ("Transform", "Conditions", "Resources", "Outputs")}
    root_conditions = _closure(conditions_used(flat.get("Outputs", {})), conditions)
    if root_conditions:
        root["Conditions"] = {c: copy.deepcopy(conditions[c]) for c in conditions if c in root_conditions}
    # W3002: a local TemplateURL works only through `sam package` / `aws cloudformation package`,
    # which upload the child templates and write their S3 URLs: that is how the root deploys.
    lint = root.setdefault("Metadata", {}).setdefault("cfn-lint", {}).setdefault("config", {})
    lint["ignore_checks"] = sorted({*lint.get("ignore_checks", []), "W3002"})
    root["Metadata"].setdefault("chute", {}).setdefault("ignored", {})["W3002"] = (
        "the child templates are local files that `sam package` uploads")
    root["Resources"] = root_resources
    if "Outputs" in flat:
        root["Outputs"] = _rewrite(copy.deepcopy(flat["Outputs"]), set(), None, root_mapping)
    return root, {stack_file(s): children[s] for s in stacks}


def _closure(names: set[str], conditions: Json) -> set[str]:
    found, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in found or name not in conditions:
            continue
        found.add(name)
        todo += conditions_used(conditions[name])
    return found
