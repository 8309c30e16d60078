"""Text encoding as fast as the hardware allows: length-sorted batches, large batches, half precision on GPU
(float32 where a published LAIONet threshold is in use: the mine pipeline asks for it), `torch.inference_mode`,
and on CPU ONNX Runtime (the default, `auto`, where installed: the same similarities as torch to 1e-6) or
OpenVINO over an exported graph, optionally int8.

Why our own export: sentence-transformers' `backend="onnx"` goes through optimum-onnx, whose only release
pins transformers < 4.58 while sentence-transformers >= 5 needs transformers 5, so it cannot be installed
beside the encoder it would speed up. The sentence-transformers model is still the source of truth: its
tokenizer, its maximum sequence length and its pooling; only its transformer runs elsewhere, exported once
with `torch.onnx.export` into the user's cache, and the result is checked against the torch model on a few
texts before use (an export that disagrees by more than 1e-4 is refused). OpenVINO reads the same ONNX file.
int8 is ONNX Runtime's dynamic quantisation of the exported graph's weights (`quantize_dynamic`); it changes
similarities by a few hundredths (docs/scaling.md states the measured difference), so it is an option, never a
default, and its embeddings are stored under their own identity.

LAIONet's `bert-base` threshold (0.97) was computed from `BertModel`'s pooler output, so `bert-*` encoders
are run that way (`transformers.BertModel`), not with sentence-transformers' mean pooling.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from imagenot.errors import ImagenotError
from imagenot.fileio import json_digest
from imagenot.mining.encoders import cache_dir, encoder_info, pooling, resolve_encoder
from imagenot.progress import Progress
from imagenot.runtime import canonical_precision, default_device, torch_dtype_name

log = logging.getLogger(__name__)

BACKENDS = ("auto", "torch", "onnx", "openvino")
EXPORT_TOLERANCE = 1e-4


@dataclass(frozen=True)
class EncoderSpec:
    """What identifies an encoder run; picklable (each process loads the model itself)."""

    encoder: str
    device: str | None = None
    batch_size: int | None = None
    backend: str = "auto"
    quantize: str = "none"
    precision: str = "auto"
    store: str | None = None  # embedding store folder; None: no store

    def fingerprint(self) -> dict[str, Any]:
        """The parts that change a vector (for the matches' fingerprint; no model load needed)."""
        # keyed by torch's dtype name, as before the one precision vocabulary: mined shards keep their keys
        precision = self.precision if self.precision == "auto" else torch_dtype_name(self.precision)
        return {"encoder": self.encoder, "backend": self.backend, "quantize": self.quantize,
                "precision": precision}


def pick_device(device: str | None = None) -> str:
    """`device` as given, or what no device means everywhere (imagenot.runtime: cuda when present)."""
    return device or default_device()


def default_batch_size(device: str, backend: str = "torch") -> int:
    """Large batches feed a GPU; on a CPU small ones are faster, their activations stay in cache (measured on 2
    cores, docs/scaling.md: torch batch 32 encodes 1.6x faster than 128; an exported graph, one batch per core
    side by side, is fastest at 8)."""
    if device.startswith("cuda"):
        return 1024
    return 32 if backend == "torch" else 8


def resolve_backend(backend: str, device: str, pooling_name: str, quantize: str = "none") -> str:
    """`auto`: the fastest engine that gives the same similarities. On a CPU that is ONNX Runtime over the
    exported fp32 graph (equal to torch within 1e-6, 1.6-2.4x faster, docs/scaling.md) where onnxruntime is
    installed; torch on a GPU, for LAIONet's BERT pooler, and where onnxruntime is missing (said in the log)."""
    if backend != "auto":
        return backend
    if quantize == "int8":
        return "onnx"
    if not device.startswith("cpu") or pooling_name == "bert-pooler":
        return "torch"
    import importlib.util

    if importlib.util.find_spec("onnxruntime") is None:
        log.info("onnxruntime is not installed: encoding with torch on the CPU (pip install onnxruntime gives "
                 "the same similarities 1.6-2.4x faster)")
        return "torch"
    return "onnx"


def _dtype_name(precision: str, device: str) -> str:
    """The torch dtype the encoder runs in (imagenot.runtime's vocabulary in, torch's dtype name out)."""
    precision = canonical_precision(precision)
    if precision == "auto":
        return "float16" if device.startswith("cuda") else "float32"
    if precision != "fp32" and not device.startswith("cuda"):
        raise ImagenotError(f"--precision {precision} is for GPUs; on {device} use fp32 (or --quantize int8 "
                            "with --encoder-backend onnx)")
    return torch_dtype_name(precision)


def _files_digest(path: Path) -> str:
    """Identity of a model folder: every file's name and size, small files' bytes, large files' ends."""
    h = hashlib.sha256()
    skip = {"README.md", "desktop.ini", ".gitattributes"}
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = f.relative_to(path)
        if rel.parts[0] in ("onnx", "openvino", ".git") or f.name in skip:
            continue
        size = f.stat().st_size
        h.update(f"{rel}\0{size}\0".encode())
        with open(f, "rb") as fh:
            if size <= 8 << 20:
                h.update(fh.read())
            else:
                h.update(fh.read(4 << 20))
                fh.seek(size - (4 << 20))
                h.update(fh.read())
    return h.hexdigest()


class TextEncoder:
    """L2-normalised float32 embeddings of texts; one instance per process and encoder."""

    def __init__(self, spec: EncoderSpec) -> None:
        if spec.backend not in BACKENDS:
            raise ImagenotError(f"unknown --encoder-backend {spec.backend!r}; known: {', '.join(BACKENDS)}")
        if spec.quantize not in ("none", "int8"):
            raise ImagenotError(f"unknown --quantize {spec.quantize!r}; known: none, int8")
        if spec.quantize == "int8" and spec.backend not in ("onnx", "auto"):
            raise ImagenotError("--quantize int8 needs --encoder-backend onnx")
        self.spec = spec
        self.device = pick_device(spec.device)
        self.dtype = _dtype_name(spec.precision, self.device)
        self.path = resolve_encoder(spec.encoder)
        self.pooling = pooling(spec.encoder)
        self.backend = resolve_backend(spec.backend, self.device, self.pooling, spec.quantize)
        if self.backend != "torch" and self.device != "cpu":
            raise ImagenotError(f"--encoder-backend {self.backend} runs on the CPU; use torch on {self.device}")
        self._embed: Callable[[list[str]], np.ndarray]
        self._lanes: _Lanes | None = None  # exported graphs: batches run side by side, one per core
        if self.pooling == "bert-pooler":
            if self.backend != "torch":
                raise ImagenotError("bert-* encoders (LAIONet's pooler output) run with --encoder-backend torch")
            self._load_bert()
        else:
            self._load_sentence_transformer()
        self.batch_size = spec.batch_size or default_batch_size(self.device, self.backend)
        model_id = _files_digest(Path(self.path)) if Path(self.path).is_dir() else self.path
        self.describe = {"encoder": spec.encoder, "model": model_id, "pooling": self.pooling, "dtype": self.dtype,
                         "backend": self.backend,
                         "quantize": "int8-per-channel" if spec.quantize == "int8" else "none",
                         "max_length": self.max_length,
                         "dim": self.dim}
        self.identity = json_digest(self.describe, 24)
        log.info("text encoder %s (%s, %s, %s%s) on %s", spec.encoder, self.pooling, self.backend, self.dtype,
                 ", int8" if spec.quantize == "int8" else "", self.device)

    # -- loading -------------------------------------------------------------------------------------------
    def _load_sentence_transformer(self) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        local = Path(self.path).is_dir()
        try:
            model = SentenceTransformer(self.path, device=self.device,
                                        local_files_only=local or os.environ.get("HF_HUB_OFFLINE") == "1")
        except Exception as exc:  # noqa: BLE001 - HF raises OSError, ValueError, HTTP errors...
            info = encoder_info(self.spec.encoder)
            hint = f" ({info.offline})" if info and info.offline else ""
            raise ImagenotError(
                f"cannot load text encoder {self.spec.encoder!r} ({self.path}): {exc}. Give a local model folder, "
                f"install its offline copy{hint}, or use --no-embed") from exc
        if self.dtype != "float32":
            model.to(getattr(torch, self.dtype))
        model.eval()
        self.model = model
        self.max_length = int(model.max_seq_length or 512)
        self.dim = int((model.get_embedding_dimension() if hasattr(model, "get_embedding_dimension") else model.get_sentence_embedding_dimension()) or 0)
        self._embed = self._st_embed
        if self.backend != "torch":
            try:
                self._embed = self._graph_embed_fn()
            except ImagenotError as exc:
                if self.spec.backend != "auto":
                    raise
                log.warning("%s: the exported graph is not usable (%s); encoding with torch", self.spec.encoder, exc)
                self.backend = "torch"

    def _st_embed(self, batch: list[str]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            emb = self.model.encode(batch, batch_size=len(batch), convert_to_numpy=True, normalize_embeddings=True,
                                    show_progress_bar=False)
        return np.asarray(emb, dtype=np.float32)

    def _load_bert(self) -> None:
        import torch
        from transformers import AutoTokenizer, BertModel

        local = Path(self.path).is_dir()
        offline = local or os.environ.get("HF_HUB_OFFLINE") == "1"
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=offline)
            model = BertModel.from_pretrained(self.path, local_files_only=offline)
        except Exception as exc:  # noqa: BLE001
            raise ImagenotError(f"cannot load BERT encoder {self.spec.encoder!r} ({self.path}): {exc}") from exc
        model.to(self.device)
        if self.dtype != "float32":
            model.to(getattr(torch, self.dtype))
        self.model = model.eval()
        self.max_length = int(min(getattr(model.config, "max_position_embeddings", 512), 512))
        self.dim = int(model.config.hidden_size)
        self._embed = self._bert_embed

    def _bert_embed(self, batch: list[str]) -> np.ndarray:
        import torch

        feats = self.tokenizer(batch, padding=True, truncation=True, max_length=self.max_length,
                               return_tensors="pt").to(self.device)
        with torch.inference_mode():
            pooled = self.model(**feats).pooler_output.float()
            pooled = torch.nn.functional.normalize(pooled, dim=1)
        return pooled.cpu().numpy().astype(np.float32)

    # -- exported graph (ONNX Runtime, OpenVINO) --------------------------------------------------------------
    def _pooling_mode(self) -> tuple[str, bool]:
        """The sentence-transformers pipeline must be transformer -> pooling (mean or cls) [-> normalize]."""
        mods = [type(m).__name__ for m in self.model]
        if len(mods) < 2 or mods[0] != "Transformer" or mods[1] != "Pooling" or any(
                m != "Normalize" for m in mods[2:]):
            raise ImagenotError(f"--encoder-backend {self.backend} supports transformer + pooling encoders; "
                                f"{self.spec.encoder} has modules {mods}: use --encoder-backend torch")
        cfg = self.model[1].get_config_dict()
        mode = cfg.get("pooling_mode") or ("cls" if cfg.get("pooling_mode_cls_token") else "mean")
        if mode not in ("mean", "cls"):
            raise ImagenotError(f"--encoder-backend {self.backend}: pooling {mode!r} not supported; use torch")
        return mode, False

    def _export(self) -> tuple[Path, list[str]]:
        import torch

        from imagenot.fileio import atomic_path

        hf = self.model[0].auto_model
        names = ["input_ids", "attention_mask"]
        probe = self.model.tokenizer(["a"], return_tensors="pt")
        if "token_type_ids" in probe:
            names.append("token_type_ids")
        src = _files_digest(Path(self.path)) if Path(self.path).is_dir() else self.path
        key = hashlib.sha256(json.dumps([src, names]).encode()).hexdigest()[:24]
        out = cache_dir() / "onnx" / key / "model.onnx"
        if out.is_file():
            return out, names

        class Graph(torch.nn.Module):
            def __init__(self, inner: Any) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, *args: Any) -> Any:
                return self.inner(**dict(zip(names, args))).last_hidden_state

        example = self.model.tokenizer(["an example caption", "another, longer example caption"], padding=True,
                                       return_tensors="pt")
        axes = {n: {0: "batch", 1: "tokens"} for n in [*names, "hidden"]}
        log.info("exporting %s to ONNX (once) -> %s", self.spec.encoder, out)
        # The tracer warns that shape tests become constants; for an encoder they are (the mask always covers
        # the input), and the export is checked against torch on texts of other lengths before use.
        with atomic_path(out, suffix=".onnx.tmp") as tmp, torch.inference_mode(False), torch.no_grad(), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", message="Exporting aten::index operator")
            torch.onnx.export(Graph(hf).eval(), tuple(example[n] for n in names), str(tmp), input_names=names,
                              output_names=["hidden"], dynamic_axes=axes, opset_version=17, dynamo=False)
        return out, names

    def _graph_embed_fn(self) -> Callable[[list[str]], np.ndarray]:
        """The exported graph as `lanes` independent single-threaded runners (one per core): small CPU batches
        keep two cores busier side by side than one batch split across both by intra-op threads (measured on 2
        cores: fp32 1.43x vs 1.18-1.36x the previous path, int8 2.8-3.1x vs 2.1-2.9x; docs/scaling.md)."""
        mode, _ = self._pooling_mode()
        onnx_path, names = self._export()
        lanes = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
        runners: list[Callable[[dict[str, np.ndarray]], np.ndarray]]
        if self.backend == "onnx":
            try:
                import onnxruntime as ort
            except ImportError as exc:
                raise ImagenotError("--encoder-backend onnx needs ONNX Runtime (an imagenot dependency): "
                                    "pip install onnxruntime onnx") from exc
            if self.spec.quantize == "int8":
                onnx_path = self._quantized(onnx_path)
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 1
            opts.inter_op_num_threads = 1
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])

            def run(feeds: dict[str, np.ndarray]) -> np.ndarray:  # InferenceSession.run is thread-safe
                return session.run(["hidden"], feeds)[0]
            runners = [run] * lanes
        else:
            try:
                import openvino as ov
            except ImportError as exc:
                raise ImagenotError("--encoder-backend openvino needs OpenVINO: pip install 'imagenot[openvino]'") \
                    from exc
            compiled = ov.Core().compile_model(str(onnx_path), "CPU", {"INFERENCE_NUM_THREADS": lanes,
                                                                        "NUM_STREAMS": lanes,
                                                                        "INFERENCE_PRECISION_HINT": "f32"})

            def runner() -> Callable[[dict[str, np.ndarray]], np.ndarray]:
                request = compiled.create_infer_request()  # one per lane: a request is not shared by threads
                return lambda feeds: np.array(request.infer(feeds)[0])
            runners = [runner() for _ in range(lanes)]

        tokenizer = self.model.tokenizer

        def tokenize(batch: list[str]) -> tuple[dict[str, np.ndarray], np.ndarray]:
            # In the calling thread only: a fast tokenizer is not safe to call from several threads at once.
            f = tokenizer(batch, padding=True, truncation=True, max_length=self.max_length, return_tensors="np")
            return {n: np.asarray(f[n], dtype=np.int64) for n in names}, np.asarray(f["attention_mask"])

        def pool(hidden: np.ndarray, attention: np.ndarray) -> np.ndarray:
            hidden = hidden.astype(np.float32)
            if mode == "cls":
                v = hidden[:, 0]
            else:
                mask = attention.astype(np.float32)[..., None]
                v = (hidden * mask).sum(1) / np.clip(mask.sum(1), 1e-9, None)
            return v / np.clip(np.linalg.norm(v, axis=1, keepdims=True), 1e-12, None)

        def embed(batch: list[str]) -> np.ndarray:
            feeds, attention = tokenize(batch)
            return pool(runners[0](feeds), attention)

        self._lanes = _Lanes(runners, tokenize, pool) if lanes > 1 else None
        if self.spec.quantize == "none":
            probe = ["a dog on the beach", "Stock photo: red bicycle, vintage, 1970s | free download",
                     "日本の 猫 cat"]
            diff = float(np.abs(embed(probe) - self._st_embed(probe)).max())
            if diff > EXPORT_TOLERANCE:
                raise ImagenotError(f"the {self.backend} export of {self.spec.encoder} disagrees with torch by "
                                    f"{diff:.2e}; use --encoder-backend torch")
        return embed

    def _quantized(self, onnx_path: Path) -> Path:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        from imagenot.fileio import atomic_path

        out = onnx_path.with_name("model.int8-per-channel.onnx")
        if not out.is_file():
            # per-channel weight scales: a third of the similarity error of per-tensor ones, same speed
            with atomic_path(out, suffix=".onnx.tmp") as tmp:
                quantize_dynamic(str(onnx_path), str(tmp), weight_type=QuantType.QInt8, per_channel=True)
        return out

    # -- encoding ------------------------------------------------------------------------------------------
    def encode(self, texts: Sequence[str], *, sort: bool = True, progress: bool = True,
               on_batch: Callable[[list[str], np.ndarray], None] | None = None) -> np.ndarray:
        """Embeddings of `texts` in their order; batches are cut from the texts sorted by length, so a batch
        pads to its own longest text, not the corpus's. `on_batch` sees every finished batch (the store
        commits it, so a kill loses at most the batch in flight)."""
        n = len(texts)
        out = np.zeros((n, self.dim), dtype=np.float32)
        if n == 0:
            return out
        order = np.argsort(np.fromiter((len(t) for t in texts), dtype=np.int64, count=n), kind="stable") \
            if sort else np.arange(n)
        with Progress(n, desc=f"encoding ({self.spec.encoder})", unit="captions",
                      enabled=progress and n > self.batch_size, logger=log) as bar:
            batches = ([texts[i] for i in order[start: start + self.batch_size]]
                       for start in range(0, n, self.batch_size))
            embedded = self._lanes.map(batches) if self._lanes is not None else (
                (batch, self._embed(batch)) for batch in batches)
            start = 0
            for batch, emb in embedded:  # in order: batch k holds order[k * batch_size:][:len(batch)]
                idx = order[start: start + len(batch)]
                start += len(batch)
                out[idx] = emb
                if on_batch is not None:
                    on_batch(batch, emb)
                bar.update(len(idx))
        return out


class _Lanes:
    """Batches through several runners at once, results in input order, at most two batches per runner in
    flight (so memory does not grow with the number of texts). Tokenising and pooling stay in the caller's
    thread; the runners (ONNX Runtime, OpenVINO) release the GIL while they compute."""

    def __init__(self, runners: list[Callable[[dict[str, np.ndarray]], np.ndarray]],
                 tokenize: Callable[[list[str]], tuple[dict[str, np.ndarray], np.ndarray]],
                 pool: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> None:
        self.runners, self.tokenize, self.pool = runners, tokenize, pool
        self._executor: ThreadPoolExecutor | None = None
        self._free: queue.SimpleQueue[Callable[[dict[str, np.ndarray]], np.ndarray]] = queue.SimpleQueue()
        for r in runners:
            self._free.put(r)

    def _run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        runner = self._free.get()  # a runner is used by one thread at a time
        try:
            return runner(feeds)
        finally:
            self._free.put(runner)

    def map(self, batches: Iterator[list[str]]) -> Iterator[tuple[list[str], np.ndarray]]:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(len(self.runners), thread_name_prefix="imagenot-encode")
        window: deque[tuple[list[str], np.ndarray, Future[np.ndarray]]] = deque()
        for batch in batches:
            feeds, attention = self.tokenize(batch)
            window.append((batch, attention, self._executor.submit(self._run, feeds)))
            if len(window) >= 2 * len(self.runners):
                b, a, fut = window.popleft()
                yield b, self.pool(fut.result(), a)
        while window:
            b, a, fut = window.popleft()
            yield b, self.pool(fut.result(), a)


_ENCODERS: dict[EncoderSpec, TextEncoder] = {}


def load_text_encoder(spec: EncoderSpec) -> TextEncoder:
    """One TextEncoder per spec and process (the pool's two passes share it)."""
    key = EncoderSpec(spec.encoder, spec.device, spec.batch_size, spec.backend, spec.quantize, spec.precision)
    if key not in _ENCODERS:
        _ENCODERS[key] = TextEncoder(key)
    return _ENCODERS[key]
