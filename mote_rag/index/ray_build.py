"""Build a sharded FAISS index on a Ray cluster: Ray Data reads the corpus, ONNX actors embed it, N shards.

For corpora that outgrow one machine. The pipeline is plain Ray Data, so it runs unchanged on a laptop
(`ray.init()` starts a local cluster) or on an existing cluster (`address="ray://head:10001"` / "auto"):

    read      ray.data.read_text (JSON Lines, .gz included), read_csv (every column as a string) or
              read_binary_files (a folder of .txt); rows become (id, text, metadata) with the same rules as
              the single-machine reader (mote_rag.readers.read_corpus): same ids, texts and metadata
    embed     map_batches(DocumentEmbedder, concurrency=workers): one actor per worker, each holding one
              onnxruntime session of the exported model's search_document graph with `threads` intra-op
              threads (and reserving that many CPUs)
    route     shard = int_id(id) % N (a stable hash; Python's hash() changes per process)
    write     groupby(shard).map_groups: each shard is one FaissIndex (add_embeddings) saved with
              FaissIndex.save, i.e. exactly the single-machine format: same index.json fields, encoder
              fingerprint, sha256-named faiss file, atomic writes
    manifest  shards.json (mote_rag.index.sharded.write_manifest), written last and atomically

Layout: <output>/shards.json names <output>/<build>/shard-0000k-of-0000N. A build writes the whole set into a
new hidden folder beside <output> and swaps it in at the end (mote_rag.atomic.staged_folder, as an export), so a
crash leaves the previous set or the new one.
Workers write the shards, so on a multi-host cluster <output> and the model folder must be on storage
every node reaches (NFS, a shared volume), as for any Ray Data write.

    from mote_rag.index.ray_build import build_ray_index
    manifest = build_ray_index("corpus.jsonl", "my-set", model="exported-onnx/", shards=4, workers=2)
    ShardedIndex.load("my-set", encoder=OnnxEncoder("exported-onnx/"))

Ray is optional (`pip install 'mote-rag[ray]'`); `require_ray()` says so when it is missing.
"""

from __future__ import annotations

import csv
import functools
import json
import logging
import os
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..atomic import staged_folder
from ..readers import ID_FIELD_GUESSES, corpus_format, iter_jsonl, parse_json_line, rows_to_corpus, split_fields
from .faiss_index import INDEX_JSON, FaissIndex, int_id
from .params import check_kind_params
from .sharded import SHARDS_JSON, read_manifest, shard_name, write_manifest

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'mote-rag[ray]'"
BUILD_PREFIX = "build-"


class RayNotInstalled(ImportError):
    """Ray (the optional extra) is not installed."""


def require_ray():
    """Import ray and ray.data, or fail with the command that installs them."""
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise RayNotInstalled(
            f"distributed indexing needs Ray, which is not installed ({exc}). Install the extra: {INSTALL_HINT}"
        ) from None
    return ray


# ---------------------------------------------------------------------------------------------- reading
class CorpusInputError(ValueError):
    """A row of the corpus is bad (raised in a Ray Data task). Its message is kept apart from `args`: Ray Data
    appends its retry advice to `args[0]` ("Failed to apply UDF transform ... if you believe this to be
    transient"), which is noise for an input error; the message travels in the instance's state and is what
    str() gives on the driver."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def _input_errors(parse):
    """The parse function, with its ValueErrors (a bad row, a bad file) raised as CorpusInputError."""

    @functools.wraps(parse)
    def wrapped(*args, **kwargs):
        try:
            return parse(*args, **kwargs)
        except CorpusInputError:
            raise
        except ValueError as exc:
            raise CorpusInputError(str(exc)) from None

    return wrapped


def _documents(
    rows: list[dict], where: str, id_field: str, text_fields: list[str], metadata_fields: list[str] | None
) -> dict:
    """Rows -> columns id, text, metadata (JSON), with the single-machine reader's checks and rules."""
    if not rows:
        empty = np.array([], dtype=object)
        return {"id": empty, "text": empty, "metadata": empty}
    corpus = rows_to_corpus(
        ((f"{where} (id {r.get(id_field)!r})", r) for r in rows), where, id_field, text_fields, metadata_fields
    )
    return {
        "id": np.array(corpus.ids, dtype=object),
        "text": np.array(corpus.texts, dtype=object),
        "metadata": np.array([json.dumps(m, ensure_ascii=False) for m in corpus.metadatas], dtype=object),
    }


@_input_errors
def _parse_jsonl(batch: dict, id_field: str, text_fields: list[str], metadata_fields) -> dict:
    rows = []
    paths = batch["path"]
    for line, path in zip(batch["text"], paths):
        rows.append(parse_json_line(line, str(path)))  # Ray's text reader gives no line numbers
    return _documents(rows, str(paths[0]) if len(paths) else "corpus", id_field, text_fields, metadata_fields)


@_input_errors
def _parse_table(batch: dict, id_field: str, text_fields: list[str], metadata_fields, source: str) -> dict:
    columns = list(batch)
    n = len(batch[columns[0]]) if columns else 0
    rows = [{c: batch[c][i] for c in columns} for i in range(n)]
    return _documents(rows, source, id_field, text_fields, metadata_fields)


@_input_errors
def _parse_txt(batch: dict, root: str) -> dict:
    rows = []
    for data, path in zip(batch["bytes"], batch["path"]):
        rel = Path(path).relative_to(root).as_posix() if Path(path).is_absolute() else Path(path).as_posix()
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"{path} is not UTF-8 text") from None
        rows.append({"id": rel, "text": text, "path": rel})
    return _documents(rows, root, "id", ["text"], ["path"])


def _first_jsonl_row(path: Path) -> dict:
    for row in iter_jsonl(path):
        return row
    raise ValueError(f"{path} holds no documents")


def read_corpus_dataset(
    path: str | os.PathLike,
    id_field: str | None = None,
    text_fields: str | Sequence[str] = "text",
    metadata_fields: str | Sequence[str] | None = None,
    parse_cpus: float = 0.0,
):
    """A Ray Dataset of documents (columns id, text, metadata as JSON) from the formats `mote-rag index` reads.

    The id field is fixed up front (`id_field`, else the first of id, _id, doc_id in the first row): row
    numbers, the single-machine fallback, are not stable when many readers split a file. Reading and
    parsing reserve `parse_cpus` (default none): they are light next to the encoders, and a cluster whose
    CPUs all go to encoder actors would otherwise never schedule them (a deadlock, not a slowdown).
    """
    ray = require_ray()
    p = Path(path).resolve()
    fmt = corpus_format(p)
    fields = split_fields(text_fields) or ["text"]
    meta = split_fields(metadata_fields)
    remote = {"num_cpus": parse_cpus}
    if fmt == "txt-folder":
        if not any(p.rglob("*.txt")):
            raise ValueError(f"{p} holds no .txt files")
        ds = ray.data.read_binary_files(str(p), include_paths=True, file_extensions=["txt"], **remote)
        return ds.map_batches(_parse_txt, fn_kwargs={"root": str(p)}, batch_format="numpy", **remote)
    if fmt == "jsonl":
        columns = list(_first_jsonl_row(p))
    else:
        delimiter = "\t" if fmt == "tsv" else ","
        with open(p, encoding="utf-8", newline="") as fh:
            columns = next(csv.reader(fh, delimiter=delimiter), None)
        if not columns:
            raise ValueError(f"{p} is empty; expected a header row")
    if id_field is None:
        id_field = next((f for f in ID_FIELD_GUESSES if f in columns), None)
        if id_field is None:
            raise ValueError(
                f"{p}: no id field ({', '.join(ID_FIELD_GUESSES)}) in the first row (fields: "
                f"{columns[:12]}); the distributed indexer needs stable ids: pass --id-field"
            )
    kwargs = {"id_field": id_field, "text_fields": fields, "metadata_fields": meta}
    if fmt == "jsonl":
        # lines parsed by json.loads, as the single-machine reader does (Arrow's JSON reader would infer and
        # coerce types per block); .gz is decompressed by Ray from the file extension
        ds = ray.data.read_text(str(p), include_paths=True, **remote)
        return ds.map_batches(_parse_jsonl, fn_kwargs=kwargs, batch_format="numpy", **remote)
    import pyarrow as pa
    import pyarrow.csv as pacsv

    ds = ray.data.read_csv(
        str(p),
        parse_options=pacsv.ParseOptions(delimiter="\t" if fmt == "tsv" else ",", newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types={c: pa.string() for c in columns}, strings_can_be_null=False, quoted_strings_can_be_null=False
        ),
        **remote,
    )
    return ds.map_batches(_parse_table, fn_kwargs={**kwargs, "source": str(p)}, batch_format="numpy", **remote)


# ---------------------------------------------------------------------------------------------- embedding
class DocumentEmbedder:
    """Ray Data actor: one onnxruntime session of the document graph with `threads` intra-op threads.

    Each batch is embedded, split by shard and sent straight to the shards' ShardWriter actors, so the
    vectors never pass through the driver; the actor returns only (id, shard, CPU seconds spent encoding,
    spread over the batch's rows) for the driver's tally: documents per encoder CPU-second is the per-core
    throughput that sizes a cluster, whatever else shares the cores.
    """

    def __init__(self, model_dir: str, document_task: str, writers: list, threads: int, batch_size: int):
        from ..runtime.onnx_encoder import OnnxEncoder

        self.encoder = OnnxEncoder(model_dir, tasks=[document_task], threads=threads)
        self.task = document_task
        self.writers = writers
        self.batch_size = int(batch_size)
        self.encoder.load(document_task)  # open the session now, not inside the first batch

    def __call__(self, batch: dict) -> dict:
        import ray

        ids = [str(d) for d in batch["id"]]
        texts = [str(t) for t in batch["text"]]
        cpu = time.process_time()
        vectors = np.asarray(self.encoder.encode(texts, task=self.task, batch_size=self.batch_size), np.float32)
        cpu = time.process_time() - cpu
        shards = np.fromiter((int_id(d) % len(self.writers) for d in ids), dtype=np.int64, count=len(ids))
        sent = []
        for k in np.unique(shards).tolist():
            rows = np.flatnonzero(shards == k)
            sent.append(
                self.writers[k].add.remote(
                    [ids[i] for i in rows],
                    [texts[i] for i in rows],
                    [str(batch["metadata"][i]) for i in rows],
                    vectors[rows],
                )
            )
        ray.get(sent)  # wait for the writers: back-pressure, and their errors surface here
        return {
            "id": np.array(ids, dtype=object),
            "shard": shards,
            "encode_cpu_s": np.full(len(ids), cpu / max(len(ids), 1), dtype=np.float64),
        }


# ---------------------------------------------------------------------------------------------- writing
def _new_shard_index(
    model_dir: str,
    kind: str,
    document_task: str,
    query_task: str,
    store_text: bool,
    encoder_spec: str,
    kind_params: dict,
) -> FaissIndex:
    """An empty shard index whose header names the encoder exactly as a single-machine build does."""
    from ..runtime.onnx_encoder import OnnxEncoder

    encoder = OnnxEncoder(model_dir)  # graphs load lazily: only the manifest and tokenizer are read here
    return FaissIndex(
        encoder,
        kind=kind,
        document_task=document_task,
        query_task=query_task,
        store_text=store_text,
        encoder_spec=encoder_spec,
        **kind_params,
    )


class ShardWriter:
    """Ray actor holding one shard: collects its rows, then builds and saves one single-machine FaissIndex.

    Adding is idempotent for a row seen before with the same text (Ray Data retries the batch of an encoder
    actor that died, and part of it may have arrived already); the same id with another text is a duplicate id.
    That error is kept and raised by `save`, which the driver calls directly: raised inside `add`, it would
    reach the driver through the encoder actor wrapped beyond recognition.
    """

    def __init__(
        self,
        path: str,
        model_dir: str,
        kind: str,
        document_task: str,
        query_task: str,
        store_text: bool,
        encoder_spec: str,
        kind_params: dict,
    ):
        self.path = path
        self.index_args = (model_dir, kind, document_task, query_task, store_text, encoder_spec, kind_params)
        self.rows: dict[str, tuple[str, str]] = {}  # id -> (text, metadata JSON)
        self.ids: list[str] = []
        self.vectors: list[np.ndarray] = []
        self.error: str | None = None

    def add(self, ids: list[str], texts: list[str], metadatas: list[str], vectors: np.ndarray) -> int:
        keep = []
        for i, (doc_id, text) in enumerate(zip(ids, texts)):
            seen = self.rows.get(doc_id)
            if seen is None:
                self.rows[doc_id] = (text, metadatas[i])
                keep.append(i)
            elif seen[0] != text and self.error is None:
                self.error = f"duplicate id {doc_id!r} in the corpus (two documents with different texts)"
        self.ids += [ids[i] for i in keep]
        self.vectors.append(np.asarray(vectors, dtype=np.float32)[keep])
        return len(self.ids)

    def save(self) -> dict:
        """Build the shard (rows sorted by id, so a rebuild writes identical files) and save it atomically."""
        if self.error:
            raise ValueError(self.error)
        index = _new_shard_index(*self.index_args)
        if self.ids:
            order = sorted(range(len(self.ids)), key=self.ids.__getitem__)
            vectors = np.concatenate(self.vectors)[order]
            ids = [self.ids[i] for i in order]
            index.add_embeddings(
                vectors, ids, metadatas=[json.loads(self.rows[d][1]) for d in ids], texts=[self.rows[d][0] for d in ids]
            )
        elif index.kind == "ivfpq":
            raise ValueError(
                f"shard {Path(self.path).name} received no documents; an IVF-PQ shard is trained on "
                "its own vectors: use fewer shards or kind flat/hnsw"
            )
        index.save(self.path)
        return {"path": self.path, "count": len(index)}


# ---------------------------------------------------------------------------------------------- driver
def check_output(output: str | os.PathLike, overwrite: bool) -> Path:
    """The shard-set folder to write; refuse to clobber anything that is not a shard set we may replace."""
    out = Path(output)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--output {out} is a file; give a directory for the shard set")
    if (out / INDEX_JSON).exists():
        raise ValueError(f"--output {out} holds a single-machine index; choose another directory for a shard set")
    if (out / SHARDS_JSON).exists():
        if not overwrite:
            raise ValueError(f"--output {out} already holds a shard set; pass --overwrite to replace it")
    elif out.is_dir() and any(out.iterdir()):
        raise ValueError(f"--output {out} is a non-empty directory that is not a shard set; choose another")
    return out


def worker_error(exc: BaseException) -> BaseException:
    """The exception a worker raised, as itself. Ray keeps it as `RayTaskError.cause` (through nested calls: an
    actor that called another actor), and `configure_ray_data` makes Ray Data pass a map function's exception on
    unwrapped (`raise_original_map_exception`), so no traceback text is parsed."""
    from ray.exceptions import RayTaskError

    while isinstance(exc, RayTaskError) and isinstance(exc.cause, BaseException) and exc.cause is not exc:
        exc = exc.cause
    return exc


def configure_ray_data(ray, show_progress: bool) -> None:
    """Map functions raise their own exceptions; progress bars and INFO lines only when asked for (the CLI's
    default), else warnings only (on Ray Data's own logger, never the root logger)."""
    context = ray.data.DataContext.get_current()
    context.raise_original_map_exception = True
    context.enable_progress_bars = bool(show_progress)
    logging.getLogger("ray.data").setLevel(logging.INFO if show_progress else logging.WARNING)


def check_build_arguments(
    model: str | os.PathLike, shards, threads, workers, batch_size, rows_per_call, kind: str, kind_params: dict
) -> Path:
    """Every argument checked before Ray starts; returns the resolved exported-model folder."""
    from ..loading import encoder_kind

    if not isinstance(shards, int) or shards < 1:
        raise ValueError(f"--shards must be a positive integer, got {shards!r}")
    if not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads per worker must be >= 1, got {threads!r}")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers must be >= 1, got {workers!r}")
    for name, value in (("batch_size", batch_size), ("rows_per_call", rows_per_call)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    check_kind_params(kind, kind_params)  # the single-machine index's rules: kind, option names and ranges
    model_dir = Path(model).resolve()
    if encoder_kind(model_dir) != "onnx":
        raise ValueError(
            f"--model {model}: distributed indexing runs the exported ONNX graphs on the workers; "
            f"export the model first (`mote-rag export {model} {model}-onnx`) and pass that folder"
        )
    return model_dir


def embed_into_shards(
    ray,
    corpus,
    build_dir: Path,
    model_dir: Path,
    shards: int,
    workers: int,
    threads: int,
    *,
    kind: str,
    kind_params: dict,
    document_task: str,
    query_task: str,
    store_text: bool,
    read_options: dict,
    batch_size: int,
    rows_per_call: int,
) -> tuple[np.ndarray, float, list]:
    """Run the pipeline (read -> embed -> route -> write); returns (rows per shard, encoder CPU seconds, what
    each ShardWriter saved). A worker's input error is raised as itself (`worker_error`)."""
    # shard holders reserve no CPU (they hold memory; the encoders need the cores) and spread over nodes
    writer_cls = ray.remote(num_cpus=0, scheduling_strategy="SPREAD")(ShardWriter)
    writers = [
        writer_cls.remote(
            str(build_dir / shard_name(k, shards)),
            str(model_dir),
            kind,
            document_task,
            query_task,
            store_text,
            str(model_dir),
            kind_params,
        )
        for k in range(shards)
    ]
    try:
        ds = read_corpus_dataset(corpus, **read_options)
        ds = ds.map_batches(
            DocumentEmbedder,
            batch_size=rows_per_call,
            batch_format="numpy",
            fn_constructor_kwargs={
                "model_dir": str(model_dir),
                "document_task": document_task,
                "writers": writers,
                "threads": threads,
                "batch_size": batch_size,
            },
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=threads,
        )
        routed = np.zeros(shards, dtype=np.int64)
        encode_cpu_s = 0.0
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            routed += np.bincount(batch["shard"], minlength=shards)
            encode_cpu_s += float(batch["encode_cpu_s"].sum())
        if not routed.sum():
            raise ValueError(f"{corpus} holds no documents")
        return routed, encode_cpu_s, ray.get([w.save.remote() for w in writers])
    except Exception as exc:
        cause = worker_error(exc)
        if cause is exc:
            raise
        raise cause.with_traceback(None) from None
    finally:
        for w in writers:
            ray.kill(w)


def build_record(
    ray, corpus, routed: np.ndarray, encode_cpu_s: float, seconds: float, workers: int, threads: int
) -> dict:
    """The `build` entry of shards.json: engine, workers, throughput (wall and per encoder CPU-second)."""
    total = int(routed.sum())
    return {
        "engine": "ray",
        "ray_version": ray.__version__,
        "workers": workers,
        "threads_per_worker": threads,
        "seconds": round(seconds, 3),
        "documents_per_second": round(total / seconds, 2) if seconds else None,
        "encode_cpu_seconds": round(encode_cpu_s, 3),
        "documents_per_encode_cpu_second": round(total / encode_cpu_s, 2) if encode_cpu_s else None,
        "corpus": str(Path(corpus).resolve()),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def build_ray_index(
    corpus: str | os.PathLike,
    output: str | os.PathLike,
    model: str | os.PathLike,
    *,
    shards: int,
    workers: int | None = None,
    threads: int = 1,
    address: str | None = None,
    kind: str = "flat",
    id_field: str | None = None,
    text_fields: str | Sequence[str] = "text",
    metadata_fields: str | Sequence[str] | None = None,
    batch_size: int = 64,
    rows_per_call: int = 256,
    store_text: bool = True,
    overwrite: bool = False,
    document_task: str = "search_document",
    query_task: str = "search_query",
    show_progress: bool = False,
    **kind_params,
) -> dict:
    """Index `corpus` into `shards` shard indexes on Ray; returns the shards.json manifest it wrote.

    model    an exported ONNX folder (`mote-rag export`); every worker opens it, so on a multi-host
             cluster it must be on shared storage
    workers  embedding actors (default: the cluster's CPUs // threads); threads: onnxruntime threads (and
             CPUs reserved) per actor; address: a running cluster ("auto", "ray://host:10001"), else a
             local one is started (and stopped afterwards) unless Ray is already initialised
    """
    ray = require_ray()
    from ..runtime.onnx_encoder import OnnxEncoder

    model_dir = check_build_arguments(model, shards, threads, workers, batch_size, rows_per_call, kind, kind_params)
    out = check_output(output, overwrite)
    encoder = OnnxEncoder(model_dir)  # driver side: fingerprint, dim and task names only (no graph loaded)
    document_task = encoder.tasks.get(document_task).name
    query_task = encoder.tasks.get(query_task).name
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    elif address is not None:
        raise ValueError("Ray is already initialised in this process; leave address unset to use that cluster")
    configure_ray_data(ray, show_progress)
    t0 = time.perf_counter()
    try:
        workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1)) // threads)
        # the whole set is written into a new hidden folder beside `out` and swapped in once its manifest is
        # written (atomic.staged_folder): a crash leaves the previous set or the new one, never a mix
        with staged_folder(out, f"the shard set {out}") as work:
            build_dir = work / f"{BUILD_PREFIX}{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
            routed, encode_cpu_s, written = embed_into_shards(
                ray,
                corpus,
                build_dir,
                model_dir,
                shards,
                workers,
                threads,
                kind=kind,
                kind_params=kind_params,
                document_task=document_task,
                query_task=query_task,
                store_text=store_text,
                read_options={"id_field": id_field, "text_fields": text_fields, "metadata_fields": metadata_fields},
                batch_size=batch_size,
                rows_per_call=rows_per_call,
            )
            counts = [int(r["count"]) for r in written]
            if counts != routed.tolist():  # the tally counts each row the pipeline produced once, retries or not
                raise ValueError(
                    f"{corpus}: {int(routed.sum()) - sum(counts)} document(s) repeat an earlier id with "
                    "the same text; ids must be unique"
                )
            build = build_record(ray, corpus, routed, encode_cpu_s, time.perf_counter() - t0, workers, threads)
            manifest = write_manifest(work, [build_dir / shard_name(k, shards) for k in range(shards)], build=build)
    finally:
        if started_here:
            ray.shutdown()
    read_manifest(out)
    logger.info("indexed %d documents into %d shards in %.1fs", manifest["count"], shards, build["seconds"])
    return manifest
