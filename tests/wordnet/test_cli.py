import json
import subprocess
import sys
from pathlib import Path

import pytest

from imagenot.cli import main


def test_help_lists_classes(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "classes" in capsys.readouterr().out


def test_console_script_help():
    exe = Path(sys.executable).with_name("imagenot")
    if not exe.exists():
        pytest.skip("console script not installed in this environment")
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "classes" in out.stdout


def test_classes_explicit_list_with_unique_lemmas(tmp_path: Path, wordnet, capsys):
    wnids = tmp_path / "w.txt"
    # cat.n.01 and the cat-o'-nine-tails share the lemma "cat"
    wnids.write_text("n02121620\nn02985606\nn03481172\n")
    out = tmp_path / "classes.tsv"
    assert main(["classes", "--reference", "fashion-mnist", "--wnids", str(wnids), "--unique-lemmas",
                 "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert len(lines) == 4
    lemmas = [line.split("\t")[3] for line in lines[1:]]
    assert not any("cat" in ls.split("|") for ls in lemmas)
    cfg = json.loads((tmp_path / "classes.config.json").read_text())
    assert cfg["unique_lemmas"] is True and cfg["reference"] == "fashion-mnist"
    # rerun from the resolved config gives the same file
    out.unlink()
    assert main(["classes", "--config", str(tmp_path / "classes.config.json")]) == 0
    assert out.read_text().splitlines() == lines


def test_classes_bad_input_exits_nonzero_and_writes_nothing(tmp_path: Path, wordnet, capsys):
    wnids = tmp_path / "w.txt"
    wnids.write_text("n01440764\nn0144\n")
    out = tmp_path / "classes.tsv"
    assert main(["classes", "--wnids", str(wnids), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{wnids}:2: malformed line" in err
    assert not out.exists() and list(tmp_path.iterdir()) == [wnids]


def test_classes_bad_reference(tmp_path: Path, capsys):
    assert main(["classes", "--reference", "imagenet-2k", "--out", str(tmp_path / "x.tsv")]) == 2
    assert "unknown reference 'imagenet-2k'" in capsys.readouterr().err


def test_unknown_config_key_is_an_error(tmp_path: Path, capsys):
    cfg = tmp_path / "c.json"
    cfg.write_text('{"reference": "fashion-mnist", "refrence": "x"}')
    assert main(["classes", "--config", str(cfg)]) == 2
    assert "unknown key(s) for ClassesConfig: refrence" in capsys.readouterr().err


def test_check_json(shared_reference, wordnet, capsys):
    assert main(["classes", "--check", str(shared_reference / "imagenot_classes.txt"),
                 "--reference", "imagenet-1k", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["count"] == 1000 and len(report["descendants_of_reference"]) == 8


def test_released_list_fetch_uses_cache(tmp_path: Path, shared_reference):
    from imagenot.wordnet.released import released_classes_path

    url = (shared_reference / "imagenot_classes.txt").as_uri()
    path = released_classes_path(url=url, cache=tmp_path)
    assert path.read_text() == (shared_reference / "imagenot_classes.txt").read_text()
    # second call does not touch the URL
    assert released_classes_path(url="http://127.0.0.1:9/none", cache=tmp_path) == path
