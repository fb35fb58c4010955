"""Read what an hio cluster stored back into Python: features as NumPy arrays or a pandas DataFrame, the
knowledge hio-discovery published (labels, a SciPy linkage), and new results as they arrive.

    import hio
    repo = hio.Repository(master="http://127.0.0.1:8080")   # or hio.Repository("http://127.0.0.1:8081")
    t = repo.features()                  # FeatureTable: t.values (tuples x features), t.columns, t.tuple_ids
    df = repo.features(as_="pandas")     # indexed by tuple id: features, source, param.<name>
    k = repo.knowledge()                 # the document (a dict) plus k.labels_for(t.tuple_ids), k.linkage
    for batch in repo.follow(timeout=60):    # new results as they are stored
        print(len(batch), batch.values.mean(axis=0))

Pure Python over the repository's REST API (docs/api.md): it needs NumPy, and pandas only for as_="pandas".
Every answer is treated as untrusted: sizes and times are bounded, and what does not parse is a
RepositoryError, never a crash. A Repository keeps no connection or state between calls: it may be shared
between threads.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import http.client
import json
import os
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable, Iterable, Iterator, NamedTuple, Optional, Sequence, Union

import numpy as np

from . import _native
from ._errors import HioError

__all__ = ["Repository", "RepositoryError", "FeatureTable", "Knowledge", "Row", "Follow"]

DEFAULT_URL = "http://127.0.0.1:8081"  # the repository of `hio up`
MAX_U64 = (1 << 64) - 1
_PAGE_MAX = 100_000  # the repository's own limit on one page (docs/api.md)
_ERROR_BODY_BYTES = 64 << 10  # of an error answer only the start is read
_NAN = float("nan")


class RepositoryError(HioError):
    """A read from the repository (or the master, for its URL) failed: it could not be reached, timed out,
    answered an HTTP error (`status`), or sent something that is not what docs/api.md describes. `code` is an
    HIO_ERR_* value as for HioError: HIO_ERR_CONNECT_FAILED, HIO_ERR_TIMEOUT, or HIO_ERR_INTERNAL (a bad
    answer); `url` is what was asked."""

    def __init__(self, message: str, *, url: Optional[str] = None, status: Optional[int] = None,
                 code: int = _native.HIO_ERR_INTERNAL):
        super().__init__(code, message)
        self.url = url
        self.status = status


class Row(NamedTuple):
    """One record of the repository, as follow(rows=True) and Repository.record() give it."""
    tuple_id: int
    source: str
    status: str  # "stored" or "failed"
    error: str  # why it failed ("" when stored)
    features: dict  # name -> float (NaN where the value was not finite)
    params: dict  # metadata["params"] when that is an object, else {}
    metadata: Any  # the metadata the source sent (None without)
    cursor: Optional[int]  # its position in the repository: pass as after= to read what came later


def _u64(v: Any) -> Optional[int]:
    return v if type(v) is int and 0 <= v <= MAX_U64 else None


def _number(v: Any) -> float:
    return float(v) if type(v) in (int, float) else _NAN


def _text(v: Any, default: str = "") -> str:
    return v if isinstance(v, str) else default


def _row(rec: dict) -> Optional[Row]:
    """The Row of one decoded record, or None when it has no usable tuple id. Odd fields become defaults."""
    tuple_id = _u64(rec.get("id"))
    if tuple_id is None:
        return None
    features = rec.get("features")
    features = {k: _number(v) for k, v in features.items()} if isinstance(features, dict) else {}
    metadata = rec.get("metadata")
    params = metadata.get("params") if isinstance(metadata, dict) else None
    return Row(tuple_id, _text(rec.get("source")), _text(rec.get("status"), "unknown"), _text(rec.get("error")),
               features, params if isinstance(params, dict) else {}, metadata, _u64(rec.get("cursor")))


_STATUS_FILTERS = ("stored", "failed", "all")


def _status_filter(status: Optional[str]) -> str:
    status = "all" if status is None else status
    if status not in _STATUS_FILTERS:
        raise ValueError(f"status must be 'stored', 'failed', 'all' or None, not {status!r}")
    return status


class _Columns:
    """Which feature names a read keeps: all (None), or the names and fnmatch patterns given, in that order."""

    def __init__(self, columns: Optional[Union[str, Sequence[str]]]):
        if isinstance(columns, str):
            columns = [columns]
        self.wanted = None if columns is None else [str(c) for c in columns]
        self._patterns = [c for c in self.wanted or () if any(ch in c for ch in "*?[")]
        self._exact = {c for c in self.wanted or () if c not in self._patterns}
        self._seen: dict = {}

    def keeps(self, name: str) -> bool:
        if self.wanted is None:
            return True
        kept = self._seen.get(name)
        if kept is None:
            kept = name in self._exact or any(fnmatch.fnmatchcase(name, p) for p in self._patterns)
            self._seen[name] = kept
        return kept

    def order(self, seen: Iterable[str]) -> list:
        """The final columns: every name seen, sorted; or the wanted ones in their order (a pattern expands to
        the sorted names it matches, an exact name stays even when no tuple has it: a column of NaN)."""
        seen = sorted(seen)
        if self.wanted is None:
            return seen
        out, taken = [], set()
        for c in self.wanted:
            names = [n for n in seen if fnmatch.fnmatchcase(n, c)] if c in self._patterns else [c]
            for n in names:
                if n not in taken:
                    taken.add(n)
                    out.append(n)
        return out


class _TableBuilder:
    """Accumulates records page by page into dense float64 blocks (no per-value Python objects are kept), and
    makes one FeatureTable at the end. At most `max_columns` distinct feature names: the dense table grows
    with rows x names, so a server inventing names cannot make it take all memory."""

    def __init__(self, columns: _Columns, status: str, max_columns: int = 10_000):
        self.columns, self.status, self.max_columns = columns, status, max_columns
        self.index: dict = {}  # feature name -> column in the blocks
        self.blocks: list = []
        self.ids: list = []
        self.sources: list = []
        self.statuses: list = []
        self.errors: list = []
        self.metadata: list = []
        self.params: list = []
        self.skipped = 0

    def admits(self, row: Row) -> bool:
        return self.status == "all" or row.status == self.status

    def add(self, rows: Sequence[Row]) -> None:
        if not rows:
            return
        index, keeps = self.index, self.columns.keeps
        for r in rows:
            for name in r.features:
                if name not in index and keeps(name):
                    if len(index) >= self.max_columns:
                        raise RepositoryError(f"more than {self.max_columns} distinct feature names: pass "
                                              "columns= to choose the ones to read (or a larger max_columns)")
                    index[name] = len(index)
        block = np.full((len(rows), len(index)), np.nan)
        for i, r in enumerate(rows):
            line = block[i]
            for name, v in r.features.items():
                j = index.get(name)
                if j is not None:
                    line[j] = v
            self.ids.append(r.tuple_id)
            self.sources.append(r.source)
            self.statuses.append(r.status)
            self.errors.append(r.error)
            self.metadata.append(r.metadata)
            self.params.append(r.params)
        self.blocks.append(block)

    def table(self, cursor: int) -> "FeatureTable":
        names = self.columns.order(self.index)
        values = np.full((len(self.ids), len(names)), np.nan)
        take = [(k, self.index[n]) for k, n in enumerate(names) if n in self.index]
        if take and self.ids:
            dst, src = (np.array(x, dtype=np.intp) for x in zip(*take))
            at = 0
            for b in self.blocks:
                width = b.shape[1]
                inside = src < width
                values[at:at + len(b)][:, dst[inside]] = b[:, src[inside]]
                at += len(b)
        self.blocks = []
        return FeatureTable(values=values, columns=names, tuple_ids=np.array(self.ids, dtype=np.uint64),
                            sources=self.sources, params=self.params, status=self.statuses, errors=self.errors,
                            metadata=self.metadata, cursor=cursor, skipped=self.skipped,
                            status_filter=self.status)


@dataclasses.dataclass(eq=False)
class FeatureTable:
    """Results of the repository as arrays: one row per tuple (in the order they were stored), one column per
    feature. `values[i, j]` is feature `columns[j]` of tuple `tuple_ids[i]`, NaN where the tuple lacks it
    (a failed tuple has no features) or its value was not finite."""
    values: np.ndarray  # float64, len(tuple_ids) x len(columns)
    columns: list  # feature names
    tuple_ids: np.ndarray  # uint64
    sources: list  # the source name of each tuple
    params: list  # metadata["params"] of each tuple ({} without)
    status: list  # "stored" or "failed"
    errors: list  # why each failed ("" when stored)
    metadata: list  # the whole metadata of each tuple (None without)
    cursor: int  # pass as after= to read only what was stored later
    skipped: int = 0  # records without a usable tuple id, left out
    status_filter: str = "stored"  # what the read asked for

    def __len__(self) -> int:
        return len(self.tuple_ids)

    def __getitem__(self, name: str) -> np.ndarray:
        """The column of one feature (a view of `values`). KeyError for a name that is not a column."""
        try:
            return self.values[:, self.columns.index(name)]
        except ValueError:
            raise KeyError(name) from None

    def param(self, name: str) -> np.ndarray:
        """One parameter of every tuple: float64 (NaN where missing) when all present values are numbers,
        else an object array (None where missing)."""
        vals = [p.get(name) for p in self.params]
        if all(v is None or type(v) in (int, float) for v in vals):
            return np.array([_NAN if v is None else float(v) for v in vals], dtype=np.float64)
        out = np.empty(len(vals), dtype=object)
        out[:] = vals
        return out

    def to_pandas(self):
        """A pandas DataFrame indexed by tuple id ("tuple_id"): the feature columns, then "source", then
        "param.<name>" for every parameter, sorted; "status" and "error" too when the read admitted failed
        tuples (status="failed" or "all"). Needs pandas (ImportError otherwise)."""
        import pandas as pd  # optional: only here

        data = {name: self.values[:, j] for j, name in enumerate(self.columns)}
        data["source"] = self.sources
        if self.status_filter != "stored":
            data["status"] = self.status
            data["error"] = self.errors
        names = sorted({k for p in self.params for k in p})
        for k in names:
            data[f"param.{k}"] = [p.get(k) for p in self.params]
        index = pd.Index(self.tuple_ids, dtype=np.uint64, name="tuple_id")
        return pd.DataFrame(data, index=index)

    def __repr__(self) -> str:
        return (f"FeatureTable({len(self)} tuples x {len(self.columns)} features, cursor {self.cursor}"
                + (f", {self.skipped} skipped" if self.skipped else "") + ")")


class Knowledge(dict):
    """The knowledge document (docs/discovery.md) as the dict it is, plus its parts as arrays:

    - `tuple_ids` (uint64, sorted) and `labels` (int64, aligned): the cluster label of each clustered tuple;
      `labels_for(ids)` aligns them to any ids, e.g. a FeatureTable's (-1 where a tuple was not clustered).
    - `linkage`: float64 (n-1) x 4 in SciPy's layout, over the parameter points (the rows of `point_labels`;
      over micro-clusters when `two_stage`): `scipy.cluster.hierarchy.dendrogram(k.linkage,
      labels=k.point_names)`.
    - `point_params`, `point_labels`, `point_tuples`, `point_names`: per parameter point; `projection`: its
      2-D PCA coordinates; `leaf_order`; `clusters` (list of dicts), `version`, `columns`.
    """

    def __init__(self, document: dict, url: Optional[str] = None):
        super().__init__(document)

        def bad(what):
            return RepositoryError(f"knowledge from {url}: {what}", url=url)

        self.version: int = _u64(document.get("version")) or 0
        self.columns: list = [c for c in document.get("columns") or [] if isinstance(c, str)]
        labels = document.get("labels") or {}
        if not isinstance(labels, dict):
            raise bad("'labels' is not an object of tuple id -> label")
        pairs = []
        for k, v in labels.items():
            tid = _u64(int(k)) if k.isascii() and k.isdigit() and len(k) <= 20 else None
            if tid is not None and type(v) is int:
                pairs.append((tid, v))
        pairs.sort()
        self.tuple_ids: np.ndarray = np.array([p[0] for p in pairs], dtype=np.uint64)
        self.labels: np.ndarray = np.array([p[1] for p in pairs], dtype=np.int64)

        points = document.get("point_labels") or []
        if not isinstance(points, list):
            raise bad("'point_labels' is not a list")
        points = [p if isinstance(p, dict) else {} for p in points]
        self.point_params: list = [p.get("params") if isinstance(p.get("params"), dict) else None for p in points]
        self.point_labels: np.ndarray = np.array([p.get("label") if type(p.get("label")) is int else -1
                                                  for p in points], dtype=np.int64)
        self.point_tuples: list = [np.array([t for t in (p.get("tuples") or []) if _u64(t) is not None]
                                            if isinstance(p.get("tuples"), list) else [], dtype=np.uint64)
                                   for p in points]
        self.linkage: np.ndarray = self._matrix(document.get("linkage"), 4, "linkage", bad)
        if len(self.linkage) and not np.isfinite(self.linkage).all():
            raise bad("'linkage' holds values that are not finite")
        self.projection: np.ndarray = self._matrix(document.get("projection"), 2, "projection", bad)
        leaf_order = document.get("leaf_order") or []
        if not isinstance(leaf_order, list) or not all(type(i) is int for i in leaf_order):
            raise bad("'leaf_order' is not a list of integers")
        self.leaf_order: np.ndarray = np.array(leaf_order, dtype=np.int64)
        clusters = document.get("clusters") or []
        self.clusters: list = [c for c in clusters if isinstance(c, dict)] if isinstance(clusters, list) else []

    @staticmethod
    def _matrix(value, width, name, bad):
        if value is None or value == []:
            return np.zeros((0, width))
        if not isinstance(value, list) or not all(
                isinstance(r, list) and len(r) == width and all(type(x) in (int, float) for x in r) for r in value):
            raise bad(f"'{name}' is not a list of rows of {width} numbers")
        return np.array(value, dtype=np.float64).reshape(-1, width)

    def labels_for(self, tuple_ids) -> np.ndarray:
        """The cluster label of each of `tuple_ids` (any sequence of ids), -1 where the knowledge has none."""
        ids = np.asarray(tuple_ids, dtype=np.uint64).reshape(-1)
        out = np.full(len(ids), -1, dtype=np.int64)
        if len(self.tuple_ids) and len(ids):
            at = np.searchsorted(self.tuple_ids, ids).clip(0, len(self.tuple_ids) - 1)
            hit = self.tuple_ids[at] == ids
            out[hit] = self.labels[at[hit]]
        return out

    @property
    def point_names(self) -> list:
        """A short text per parameter point ("rate=1, regime=quiet"), e.g. for dendrogram labels."""
        return [", ".join(f"{k}={v}" for k, v in sorted(p.items())) if p else "-" for p in self.point_params]

    def __repr__(self) -> str:
        return (f"Knowledge(version {self.version}: {len(self.tuple_ids)} tuples, {len(self.point_labels)} "
                f"parameter points, {len(self.clusters)} clusters)")


def _default_url() -> str:
    env = os.environ.get("HIO_REPOSITORY")
    if env:
        return env
    try:  # what a `hio up` in this directory wrote
        with open(os.path.join("hio-data", "cluster.json"), "rb") as f:
            url = json.loads(f.read(1 << 20)).get("repository")
        if isinstance(url, str) and url:
            return url
    except (OSError, ValueError, AttributeError):
        pass
    return DEFAULT_URL


def _check_url(url: Any, what: str) -> str:
    if not isinstance(url, str):
        raise TypeError(f"{what} must be a URL string, not {type(url).__name__}")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{what} must be an http:// or https:// URL, not {url!r}")
    return url.rstrip("/")


def _printable(b: bytes, n: int = 300) -> str:
    s = b[:n].decode("utf-8", "replace")
    return "".join(c if c.isprintable() else " " for c in s).strip()


class Repository:
    """Reads one hio repository over REST (docs/api.md). Thread-safe: it holds no connection between calls.

    url: the repository, e.g. "http://127.0.0.1:8081". Or master=: a master's URL (what `hio up` prints), whose
    /v1/status names its repository. With neither: $HIO_REPOSITORY, then the cluster a `hio up` in the current
    directory wrote (hio-data/cluster.json), then http://127.0.0.1:8081.
    timeout: seconds for each HTTP request as a whole (connect, answer, body).
    max_response_bytes: a larger answer is refused (RepositoryError) rather than read.
    page_size: records per request when reading features (the repository allows at most 100000).
    max_columns: a read that meets more distinct feature names than this is refused (RepositoryError): pass
      columns= to read some of them.
    Raises RepositoryError when master= is given and the master cannot say where its repository is.
    """

    def __init__(self, url: Optional[str] = None, *, master: Optional[str] = None, timeout: float = 30.0,
                 max_response_bytes: int = 256 << 20, page_size: int = 5000, max_columns: int = 10_000):
        if url is not None and master is not None:
            raise ValueError("give url (the repository) or master, not both")
        if not timeout > 0:
            raise ValueError(f"timeout must be positive, not {timeout!r}")
        if not 1 <= int(page_size) <= _PAGE_MAX:
            raise ValueError(f"page_size must be from 1 to {_PAGE_MAX}, not {page_size!r}")
        if not int(max_response_bytes) >= 1024:
            raise ValueError(f"max_response_bytes must be at least 1024, not {max_response_bytes!r}")
        self.timeout = float(timeout)
        self.max_response_bytes = int(max_response_bytes)
        self.page_size = int(page_size)
        self.max_columns = int(max_columns)
        if master is not None:
            master = _check_url(master, "master")
            status = self._json(master + "/v1/status", limit=min(self.max_response_bytes, 64 << 20))
            repo = status.get("repository") if isinstance(status, dict) else None
            if not isinstance(repo, str) or not repo:
                raise RepositoryError(f"the master at {master} names no repository (it runs without "
                                      "--repository): give the repository's URL", url=master + "/v1/status")
            try:
                url = _check_url(repo, "the master's repository")
            except ValueError as e:
                raise RepositoryError(f"the master at {master}: {e}", url=master + "/v1/status") from None
        self.url: str = _check_url(_default_url() if url is None else url, "url")

    def __repr__(self) -> str:
        return f"Repository({self.url!r})"

    # ---- HTTP: one bounded request

    def _get(self, url: str, limit: Optional[int] = None, allow: tuple = ()) -> tuple:
        """(status, headers, body) of GET url. Raises RepositoryError for an unreachable server, a timeout,
        an answer over `limit` bytes, and any HTTP error status not in `allow`."""
        limit = self.max_response_bytes if limit is None else limit
        deadline = time.monotonic() + self.timeout
        req = urllib.request.Request(url, headers={"User-Agent": "hio-python", "Accept-Encoding": "identity"})
        try:
            try:
                resp = urllib.request.urlopen(req, timeout=self.timeout)
            except urllib.error.HTTPError as e:
                resp = e
            with resp:
                status = resp.status if hasattr(resp, "status") else resp.code
                error = status >= 400
                if error and status not in allow:
                    limit = min(limit, _ERROR_BODY_BYTES)
                length = resp.headers.get("Content-Length")
                if length is not None and length.strip().isdigit() and int(length) > limit and not error:
                    raise RepositoryError(f"{url}: the answer is {int(length)} bytes, over the limit of {limit} "
                                          "(max_response_bytes; for features, a smaller page_size)", url=url)
                body = self._read(resp, limit, deadline, url, truncate=error and status not in allow)
                headers = resp.headers
        except RepositoryError:
            raise
        except urllib.error.URLError as e:
            reason = e.reason
            code = _native.HIO_ERR_TIMEOUT if isinstance(reason, (socket.timeout, TimeoutError)) else \
                _native.HIO_ERR_CONNECT_FAILED
            raise RepositoryError(f"cannot reach {url}: {reason}", url=url, code=code) from None
        except (socket.timeout, TimeoutError):
            raise RepositoryError(f"{url}: no answer within {self.timeout:g} s", url=url,
                                  code=_native.HIO_ERR_TIMEOUT) from None
        except (http.client.HTTPException, ConnectionError, OSError, ValueError) as e:
            raise RepositoryError(f"{url}: not a valid HTTP answer ({type(e).__name__}: {e})", url=url,
                                  code=_native.HIO_ERR_CONNECT_FAILED if isinstance(e, ConnectionError)
                                  else _native.HIO_ERR_INTERNAL) from None
        if status >= 400 and status not in allow:
            message = _printable(body)
            try:
                j = json.loads(body)
                if isinstance(j, dict) and isinstance(j.get("error"), str):
                    message = _printable(j["error"].encode())
            except (ValueError, RecursionError):
                pass
            raise RepositoryError(f"{url}: HTTP {status}: {message or 'no reason given'}", url=url, status=status)
        if status != 200 and status not in allow:
            raise RepositoryError(f"{url}: unexpected HTTP {status}", url=url, status=status)
        return status, headers, body

    def _read(self, resp, limit: int, deadline: float, url: str, truncate: bool) -> bytes:
        read = getattr(resp, "read1", None) or resp.read
        chunks, n = [], 0
        while True:
            if time.monotonic() > deadline:
                raise RepositoryError(f"{url}: the answer took longer than {self.timeout:g} s", url=url,
                                      code=_native.HIO_ERR_TIMEOUT)
            chunk = read(min(1 << 20, limit + 1 - n))
            if not chunk:
                break
            chunks.append(chunk)
            n += len(chunk)
            if n > limit:
                if truncate:
                    break
                raise RepositoryError(f"{url}: the answer is over the limit of {limit} bytes "
                                      "(max_response_bytes; for features, a smaller page_size)", url=url)
        return b"".join(chunks)[:limit]

    def _json(self, url: str, limit: Optional[int] = None, allow: tuple = ()):
        status, _, body = self._get(url, limit, allow)
        if status in allow:
            return None
        try:
            return json.loads(body)
        except (ValueError, RecursionError) as e:
            raise RepositoryError(f"{url}: the answer is not JSON ({type(e).__name__}: {str(e)[:200]})",
                                  url=url) from None

    # ---- records

    def _page(self, after: int, limit: int) -> tuple:
        """(rows, next cursor, full page?, skipped) of one GET /v1/features."""
        url = f"{self.url}/v1/features?after={after}&limit={limit}&format=jsonl"
        _, headers, body = self._get(url)
        rows, lines, skipped = [], 0, 0
        for n, line in enumerate(body.split(b"\n")):
            if not line.strip():
                continue
            lines += 1
            try:
                rec = json.loads(line)
            except (ValueError, RecursionError) as e:
                raise RepositoryError(f"{url}: line {n + 1} is not a JSON record ({type(e).__name__}: "
                                      f"{str(e)[:200]})", url=url) from None
            if not isinstance(rec, dict):
                raise RepositoryError(f"{url}: line {n + 1} is not a JSON object", url=url)
            row = _row(rec)
            if row is None:
                skipped += 1
            else:
                rows.append(row)
        if lines > limit:
            raise RepositoryError(f"{url}: {lines} records for a page of at most {limit}", url=url)
        header = (headers.get("X-Hio-Next-Cursor") or "").strip()
        nxt = _u64(int(header)) if header.isdigit() and len(header) <= 20 else None
        if nxt is None:
            cursors = [r.cursor for r in rows if r.cursor is not None]
            nxt = cursors[-1] if cursors else (after if lines == 0 else None)
        if nxt is None or (lines and nxt <= after):
            raise RepositoryError(f"{url}: the repository's cursor does not advance past {after} "
                                  f"(X-Hio-Next-Cursor {header or 'missing'!r})", url=url)
        return rows, nxt, lines == limit, skipped

    def _rows(self, after: int, page_size: int) -> Iterator[tuple]:
        """Pages of rows from `after` to the end: (rows, cursor after the page, skipped)."""
        cursor = after
        while True:
            rows, cursor, full, skipped = self._page(cursor, page_size)
            yield rows, cursor, skipped
            if not full:
                return

    def _end(self) -> int:
        """The cursor of the newest record now. Records are numbered from 1 without reuse, so the count is a
        lower bound of it; what lies beyond is paged over (nothing, unless records came in meanwhile)."""
        counts = self.counts()
        cursor = _u64(counts.get("records")) or 0
        for _, cursor, _ in self._rows(cursor, self.page_size):
            pass
        return cursor

    def features(self, *, as_: str = "numpy", columns: Optional[Union[str, Sequence[str]]] = None,
                 status: Optional[str] = "stored", after: Optional[int] = None,
                 limit: Optional[int] = None):
        """The features of the tuples stored after cursor `after` (default: all), oldest first, read page by
        page until the end (or `limit` tuples).

        as_: "numpy" gives a FeatureTable (values, columns, tuple_ids, sources, params, status, cursor);
          "pandas" its DataFrame (see FeatureTable.to_pandas).
        columns: feature names or fnmatch patterns ("mRNA.*") to keep, in that order; default all, sorted.
        status: "stored" (default), "failed" (their rows are NaN, the reason in `errors`), "all" or None.
        Pass the result's `cursor` as after= to read only what was stored since.
        Raises RepositoryError (unreachable, HTTP error, a malformed or oversized answer); ValueError for
        bad arguments. A record without a usable tuple id is left out and counted in `skipped`.
        """
        if as_ not in ("numpy", "pandas"):
            raise ValueError(f"as_ must be 'numpy' or 'pandas', not {as_!r}")
        if as_ == "pandas":
            import pandas  # noqa: F401 - fail before reading, not after
        status = _status_filter(status)
        after = 0 if after is None else after
        if _u64(after) is None:
            raise ValueError(f"after must be a cursor (an integer >= 0), not {after!r}")
        if limit is not None and (type(limit) is not int or limit < 0):
            raise ValueError(f"limit must be a non-negative integer or None, not {limit!r}")
        b = _TableBuilder(_Columns(columns), status, self.max_columns)
        cursor = after
        left = limit
        while left is None or left > 0:
            page = self.page_size if left is None or status != "all" else min(self.page_size, left)
            rows, nxt, full, skipped = self._page(cursor, page)
            b.skipped += skipped
            rows = [r for r in rows if b.admits(r)]
            if left is not None and len(rows) >= left:
                rows = rows[:left]
                if rows and rows[-1].cursor is not None:
                    nxt = rows[-1].cursor
                full = False
            b.add(rows)
            cursor = nxt
            if left is not None:
                left -= len(rows)
            if not full:
                break
        t = b.table(cursor)
        return t.to_pandas() if as_ == "pandas" else t

    def record(self, tuple_id: int) -> Optional[Row]:
        """The record of one tuple (GET /v1/tuples/<id>), or None when the repository has none."""
        if _u64(tuple_id) is None:
            raise ValueError(f"tuple_id must be an integer from 0 to 2**64-1, not {tuple_id!r}")
        url = f"{self.url}/v1/tuples/{tuple_id}"
        rec = self._json(url, allow=(404,))
        if rec is None:
            return None
        row = _row(rec) if isinstance(rec, dict) else None
        if row is None:
            raise RepositoryError(f"{url}: the answer is not a record with a tuple id", url=url)
        return row

    def counts(self) -> dict:
        """GET /v1/counts: {"records", "stored", "failed", "rows_read", "batches", "duplicates", "conflicts"}."""
        url = self.url + "/v1/counts"
        c = self._json(url, limit=1 << 20)
        if not isinstance(c, dict):
            raise RepositoryError(f"{url}: the answer is not a JSON object", url=url)
        return c

    def wait(self, tuple_ids: Iterable[int], *, timeout: float = 600.0, poll_s: float = 0.5,
             as_: str = "numpy", columns=None):
        """Waits until every tuple of `tuple_ids` (e.g. a BatchResult's, queued ones included) has its record,
        stored or failed, and returns them in the order given (a FeatureTable with status "all", or its
        DataFrame). Looks each id up once (or, when the ids are many for the repository's size, reads it all),
        then follows the cursor for the rest. Raises RepositoryError
        (code HIO_ERR_TIMEOUT) naming the ids still missing after `timeout` seconds."""
        ids = [int(t) for t in tuple_ids]
        if any(_u64(t) is None for t in ids):
            raise ValueError("tuple ids must be integers from 0 to 2**64-1")
        deadline = time.monotonic() + timeout
        found: dict = {}
        unique = list(dict.fromkeys(ids))
        records = _u64(self.counts().get("records")) or 0
        if len(unique) * 50 >= records:
            start = 0  # reading every record costs less than a request per id (~50 records per request's time)
        else:
            start = self._end()  # whatever is missing below comes after this
            for t in unique:
                r = self.record(t)
                if r is not None:
                    found[t] = r
        missing = set(unique) - set(found)
        follow = self.follow(after=start, poll_s=poll_s, timeout=max(0.0, deadline - time.monotonic()),
                             status="all", rows=True) if missing else iter(())
        for r in follow:
            if r.tuple_id in missing:
                found[r.tuple_id] = r
                missing.discard(r.tuple_id)
                if not missing:
                    break
        if missing:
            some = ", ".join(str(t) for t in sorted(missing)[:10])
            raise RepositoryError(f"{len(missing)} of {len(set(ids))} tuples have no record after {timeout:g} s "
                                  f"(e.g. {some})", url=self.url, code=_native.HIO_ERR_TIMEOUT)
        b = _TableBuilder(_Columns(columns), "all", self.max_columns)
        b.add([found[t] for t in ids])
        t = b.table(self._end())
        return t.to_pandas() if as_ == "pandas" else t

    def follow(self, *, after: Optional[int] = None, poll_s: float = 1.0, timeout: Optional[float] = None,
               stop: Optional[Union[threading.Event, Callable[[], bool]]] = None, rows: bool = False,
               max_rows: Optional[int] = None, as_: str = "numpy", columns=None,
               status: Optional[str] = "stored") -> "Follow":
        """An iterator over results as they are stored: each item is a FeatureTable (or DataFrame with
        as_="pandas") of the rows that arrived since the previous one, never empty; or, with rows=True, one
        Row at a time.

        after: the cursor to start after; default the newest record when follow() is called, so that only
          tuples stored from then on come (after=0: everything stored so far first).
        It polls every `poll_s` seconds while nothing is new and ends after `timeout` seconds in all (None:
        never), once `max_rows` rows were given, when `stop` (a threading.Event or a callable) is set, or on
        close(). Its `cursor` is where it is: pass it as after= to resume. `columns` and `status` as for
        features(). Once it has read successfully, a repository that cannot be reached for a while is
        retried until the timeout; other errors raise RepositoryError.
        """
        if as_ not in ("numpy", "pandas"):
            raise ValueError(f"as_ must be 'numpy' or 'pandas', not {as_!r}")
        if not poll_s > 0:
            raise ValueError(f"poll_s must be positive, not {poll_s!r}")
        if after is not None and _u64(after) is None:
            raise ValueError(f"after must be a cursor (an integer >= 0), not {after!r}")
        return Follow(self, self._end() if after is None else after, poll_s=poll_s, timeout=timeout, stop=stop,
                      rows=rows, max_rows=max_rows, as_=as_, columns=columns, status=_status_filter(status))

    # ---- knowledge

    def knowledge(self, version: Union[int, str, None] = None) -> Knowledge:
        """The knowledge document hio-discovery published: the newest (version None or "latest") or that
        version. Raises RepositoryError with status 404 when there is none (yet)."""
        if version is None or version == "latest":
            which = "latest"
        elif type(version) is int and version >= 1:
            which = str(version)
        else:
            raise ValueError(f"version must be None, 'latest' or a positive integer, not {version!r}")
        url = f"{self.url}/v1/knowledge/{which}"
        try:
            doc = self._json(url)
        except RepositoryError as e:
            if e.status == 404:
                why = ("no knowledge has been published yet (is hio-discovery running?)" if which == "latest"
                       else f"no knowledge version {which}")
                e.args = (f"{url}: {why}",)
            raise
        if not isinstance(doc, dict):
            raise RepositoryError(f"{url}: the answer is not a JSON object", url=url)
        return Knowledge(doc, url)

    def knowledge_versions(self, limit: int = 20) -> list:
        """The history, newest first: [{"version", "stored_at_ms", "summary"}] (GET /v1/knowledge?limit=)."""
        url = f"{self.url}/v1/knowledge?limit={int(limit)}"
        doc = self._json(url)
        versions = doc.get("versions") if isinstance(doc, dict) else None
        if not isinstance(versions, list):
            raise RepositoryError(f"{url}: the answer has no list 'versions'", url=url)
        return [v for v in versions if isinstance(v, dict)]


class Follow:
    """The iterator Repository.follow() returns. Use it from one thread; stop it from any (close(), or the
    `stop` event)."""

    def __init__(self, repo: Repository, after: int, *, poll_s, timeout, stop, rows, max_rows, as_, columns,
                 status):
        self.cursor: int = after
        self._read_at = after  # where the next page starts (ahead of cursor while rows wait in _pending)
        self._repo, self._poll_s, self._rows, self._as = repo, poll_s, rows, as_
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._stop = stop
        self._left = max_rows
        self._columns, self._status = columns, status
        self._closed = threading.Event()
        self._pending: list = []  # rows read but not yet given (rows=True)
        self._ok_once = False

    def close(self) -> None:
        self._closed.set()

    def __iter__(self) -> "Follow":
        return self

    def _stopped(self) -> bool:
        if self._closed.is_set() or (self._left is not None and self._left <= 0):
            return True
        s = self._stop
        if s is not None and (s.is_set() if isinstance(s, threading.Event) else s()):
            return True
        return self._deadline is not None and time.monotonic() >= self._deadline

    def _sleep(self) -> None:
        wait = self._poll_s
        if self._deadline is not None:
            wait = min(wait, max(0.0, self._deadline - time.monotonic()))
        (self._stop if isinstance(self._stop, threading.Event) else self._closed).wait(wait)

    def __next__(self):
        while True:
            if self._rows and self._pending and not self._stopped():
                self._left = None if self._left is None else self._left - 1
                row = self._pending.pop(0)
                self.cursor = self._read_at if not self._pending or row.cursor is None else row.cursor
                return row
            if self._stopped():
                raise StopIteration
            builder = _TableBuilder(_Columns(self._columns), self._status, self._repo.max_columns)
            try:
                rows, nxt, full, skipped = self._repo._page(self._read_at, self._repo.page_size)
                self._ok_once = True
            except RepositoryError as e:
                if not self._ok_once or e.code not in (_native.HIO_ERR_CONNECT_FAILED, _native.HIO_ERR_TIMEOUT):
                    raise
                self._sleep()
                continue
            rows = [r for r in rows if builder.admits(r)]
            if self._left is not None and len(rows) > self._left:
                rows = rows[:self._left]
                if rows[-1].cursor is not None:
                    nxt = rows[-1].cursor
            self._read_at = nxt
            if rows:
                if self._rows:
                    self._pending = rows
                    continue
                if self._left is not None:
                    self._left -= len(rows)
                self.cursor = nxt
                builder.skipped = skipped
                builder.add(rows)
                t = builder.table(self.cursor)
                return t.to_pandas() if self._as == "pandas" else t
            if not self._rows or not self._pending:
                self.cursor = nxt
            if not full:
                self._sleep()
