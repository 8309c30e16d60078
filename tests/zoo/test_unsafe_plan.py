"""Issue 25 (unsafe): names in a zoo plan become run folders, and values in it become script lines.

A plan is data: its dataset, transfer and model names must stay folder names under the plan's `out`, and
its values must stay single, quoted values in the printed torchrun commands and Slurm script.
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from imagenot.cli import main

from .test_zoo import PLAN


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def _plan(tmp_path: Path, **changes: object) -> Path:
    path = tmp_path / "plans" / "plan.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({**PLAN, "out": str(tmp_path / "work" / "zoo"), **changes}))
    return path


def _dataset(name: str) -> list[dict[str, object]]:
    return [{**PLAN["datasets"][0], "name": name}]


@pytest.mark.parametrize(("changes", "what"), [
    ({"datasets": _dataset("../../escaped")}, "plan dataset name '../../escaped'"),
    ({"datasets": _dataset("/tmp/imagenot-abs-run")}, "plan dataset name '/tmp/imagenot-abs-run'"),
    ({"datasets": _dataset("..")}, "plan dataset name '..'"),
    ({"datasets": _dataset("a\nb")}, "plan dataset name 'a\\nb'"),
    ({"datasets": _dataset("x" * 300)}, "300 bytes long"),
    ({"datasets": [{**PLAN["datasets"][0], "name": None, "spec": "wds:/data/.."}]}, "plan dataset name '..'"),
    ({"transfer": [{**PLAN["transfer"][0], "name": "../../t"}]}, "plan transfer name '../../t'"),
    ({"models": ["../resnet_s32"]}, "plan model name '../resnet_s32'"),
])
@pytest.mark.parametrize("mode", ["run", "print"])
def test_plan_names_that_are_not_folder_names_are_refused(tmp_path: Path, changes: dict[str, object], what: str,
                                                         mode: str, capsys: pytest.CaptureFixture[str]) -> None:
    plan = _plan(tmp_path, **changes)
    before = _tree(tmp_path)
    argv = ["zoo", "--config", str(plan)] + (["--print", "slurm"] if mode == "print" else [])
    rc = main(argv)
    captured = capsys.readouterr()
    assert rc == 2 and "Traceback" not in captured.err
    assert what in captured.err
    assert _tree(tmp_path) == before and captured.out == ""
    assert not Path("/tmp/imagenot-abs-run").exists()


def test_slurm_values_stay_values(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = _plan(tmp_path, slurm={"partition": "gpu; touch pwned", "comment": "two words"})
    assert main(["zoo", "--config", str(plan), "--print", "slurm"]) == 0
    script = capsys.readouterr().out
    assert "#SBATCH --partition='gpu; touch pwned'" in script and "#SBATCH --comment='two words'" in script
    subprocess.run(["bash", "-n", "-c", script], check=True)  # still one valid script
    for slurm, match in (({"time": "1:00\nrm -rf ~"}, "Slurm option time"),
                         ({"x\n#SBATCH --wrap": "1"}, "not an option name")):
        before = _tree(tmp_path)
        assert main(["zoo", "--config", str(_plan(tmp_path, slurm=slurm)), "--print", "slurm"]) == 2
        captured = capsys.readouterr()
        assert match in captured.err and "Traceback" not in captured.err and "rm -rf" not in captured.out
        assert _tree(tmp_path) == before


def test_printed_commands_quote_every_value(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = _plan(tmp_path, datasets=[{**PLAN["datasets"][0], "name": "ref $(touch pwned); x"}],
                 out=str(tmp_path / "out dir"))
    assert main(["zoo", "--config", str(plan), "--print", "torchrun"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("#")]
    argv = shlex.split(lines[0])
    assert argv[argv.index("--dataset-name") + 1] == "ref $(touch pwned); x"
    assert argv[argv.index("--out") + 1] == str(tmp_path / "out dir" / "ref $(touch pwned); x" / "alexnet_s32"
                                                / "seed0")
    assert not (Path.cwd() / "pwned").exists()
