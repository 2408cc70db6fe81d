"""Compressed files (gzip, bz2, xz, zstd) decompressed as they are read, and checked whole.

The check is in the reading stream, not a pass before it: each decompressor runs anyway, and
at the end of the input it must have seen its end-of-stream marker (gzip's also checks its
CRC32 and length). A file that ends early or holds a corrupt byte raises ReadError from the
read that meets it, before the reader's last rows: the load is one transaction with the
ledger, so nothing of the file is loaded and the message says where it broke. The same
stream serves `chute load`, projects and S3 objects (formats/csv.py open_stream).
"""

from __future__ import annotations

import bz2
import io
import lzma
import zlib

from chute.errors import ReadError

MAGIC = ((b"\x1f\x8b", "gzip"), (b"\xfd7zXZ\x00", "xz"), (b"\x28\xb5\x2f\xfd", "zstd"))


def detect_compression(head: bytes) -> str | None:
    """gzip, bz2, xz or zstd from the first bytes, or None."""
    for magic, name in MAGIC:
        if head.startswith(magic):
            return name
    if head.startswith(b"BZh") and head[3:4].isdigit():  # "BZh" and the block size, 1-9
        return "bz2"
    return None


def _decompressor(kind: str):
    if kind == "gzip":
        return zlib.decompressobj(wbits=31)  # gzip header; CRC32 and length trailer checked
    if kind == "bz2":
        return bz2.BZ2Decompressor()
    if kind == "xz":
        return lzma.LZMADecompressor()
    raise ValueError(kind)


class Decompressed(io.RawIOBase):
    """A raw stream of the decompressed bytes of `stream` (anything with read(n))."""

    def __init__(self, stream, kind: str, chunk: int = 1 << 20):
        self.stream, self.kind, self.chunk = stream, kind, chunk
        self.read_in = self.written = 0  # compressed bytes read, decompressed bytes given
        self.pending = b""
        self.done = False
        if kind == "zstd":  # pyarrow's codec (no extra package); it raises on a cut or corrupt frame
            import pyarrow as pa

            self.arrow = pa.CompressedInputStream(pa.PythonFile(_Counting(stream, self), mode="r"), "zstd")
        else:
            self.arrow = None
            self.d = _decompressor(kind)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self.pending and not self.done:
            self.pending = self._more()
        n = min(len(buffer), len(self.pending))
        buffer[:n] = self.pending[:n]
        self.pending = self.pending[n:]
        self.written += n
        return n

    def _more(self) -> bytes:
        if self.arrow is not None:
            try:
                out = self.arrow.read(self.chunk)
            except OSError as exc:
                raise self._broken(f"corrupt or truncated ({exc})") from None
            self.done = not out
            return out
        data = self.d.unused_data if self.d.eof else b""
        if self.d.eof:  # a member ended: another may follow (gzip -c a b > ab.gz, pbzip2)
            if not data.strip(b"\x00"):
                data = self.stream.read(self.chunk)
                self.read_in += len(data)
                if not data:
                    self.done = True
                    return b""
            self.d = _decompressor(self.kind)
        if not data:
            data = self.stream.read(self.chunk)
            self.read_in += len(data)
            if not data:
                self.done = True
                raise self._broken("truncated: it ends before its end-of-stream marker")
        try:
            return self.d.decompress(data)
        except (zlib.error, OSError, lzma.LZMAError, EOFError) as exc:
            raise self._broken(f"corrupt ({exc})") from None

    def _broken(self, what: str) -> ReadError:
        return ReadError(f"the {self.kind} stream is {what} at byte {self.read_in:,} of the compressed file "
                         f"(after {self.written + len(self.pending):,} bytes of data); nothing of it was loaded")

    def close(self) -> None:
        if not self.closed:
            self.stream.close()
        super().close()


class _Counting:
    """A stream's read(n), counting the bytes read into `owner.read_in`."""

    def __init__(self, stream, owner: Decompressed):
        self.stream, self.owner, self.closed = stream, owner, False

    def read(self, n: int = -1) -> bytes:
        data = self.stream.read(n)
        self.owner.read_in += len(data)
        return data

    def close(self) -> None:
        self.closed = True


def decompressed(stream, kind: str) -> io.BufferedReader:
    return io.BufferedReader(Decompressed(stream, kind), 1 << 20)


def decompress_head(data: bytes, size: int) -> bytes:
    """Up to `size` decompressed bytes of a compressed file's first bytes (for sniffing and
    inference); what a cut head cannot give is simply not there."""
    kind = detect_compression(data[:6])
    if kind is None:
        return data[:size]
    stream = decompressed(io.BytesIO(data), kind)
    out = b""
    try:
        while len(out) < size:
            chunk = stream.read(min(1 << 20, size - len(out)))
            if not chunk:
                break
            out += chunk
    except ReadError:
        pass  # the head of a bigger file ends mid-stream
    return out
