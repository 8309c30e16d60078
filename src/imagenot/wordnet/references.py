"""Reference class sets: the benchmark whose classes a contrast dataset must avoid."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from imagenot.errors import InputError
from imagenot.registry import Registry
from imagenot.wordnet.synsets import UnknownWnidError, is_wnid, wnid_to_synset

# Fashion-MNIST's 10 labels (in label order) as WordNet 3.0 noun synsets. Each is the sense of the label word
# that names the garment as Zalando sells it:
#  0 "T-shirt/top" -> jersey.n.03 (lemmas jersey, T-shirt, tee shirt: "a close-fitting pullover shirt")
#  1 "Trouser"     -> trouser.n.01 (trouser, pant)
#  2 "Pullover"    -> pullover.n.01 ("a sweater that is put on by pulling it over the head")
#  3 "Dress"       -> dress.n.01 (dress, frock: "a one-piece garment for a woman")
#  4 "Coat"        -> coat.n.01 ("an outer garment that has sleeves ... worn outdoors")
#  5 "Sandal"      -> sandal.n.01
#  6 "Shirt"       -> shirt.n.01
#  7 "Sneaker"     -> gym_shoe.n.01 (gym shoe, sneaker, tennis shoe)
#  8 "Bag"         -> bag.n.04 (bag, handbag, pocketbook, purse): the catalogue's bags are handbags; the generic
#                     bag.n.01 shares the lemma "bag", so the lemma rule keeps it out of the pool as well
#  9 "Ankle boot"  -> boot.n.01 ("footwear that covers the whole foot and lower leg"; WordNet has no ankle boot)
FASHION_MNIST_WNIDS: tuple[str, ...] = (
    "n03595614", "n04489008", "n04021028", "n03236735", "n03057021",
    "n04133789", "n04197391", "n03472535", "n02774152", "n02872752",
)
FASHION_MNIST_LABELS: tuple[str, ...] = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)


def imagenet_1k_wnids() -> list[str]:
    """ImageNet-1k wnids in class order, from the file timm ships (no network)."""
    text = resources.files("timm.data").joinpath("_info/imagenet_synsets.txt").read_text()
    wnids = [w.strip() for w in text.split() if w.strip()]
    if len(wnids) != 1000:
        raise InputError(f"expected 1000 ImageNet-1k wnids in timm's imagenet_synsets.txt, got {len(wnids)}")
    return wnids


def read_wnid_file(path: str | Path) -> list[str]:
    """A file with one wnid per line (blank lines and '#' comments ignored); errors name file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("no such file", path) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text ({exc.reason})", path) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path) from None
    wnids: list[str] = []
    seen: dict[str, int] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        token = line.split()[0] if "\t" not in line else line.split("\t")[0].strip()
        if not is_wnid(token):
            raise InputError(f"malformed line {raw.strip()[:60]!r}: expected a wnid like n01440764", path, lineno)
        if token in seen:
            raise InputError(f"duplicate wnid {token} (first on line {seen[token]})", path, lineno)
        try:
            wnid_to_synset(token)
        except UnknownWnidError:
            raise InputError(f"unknown wnid {token}: not a WordNet 3.0 synset", path, lineno) from None
        seen[token] = lineno
        wnids.append(token)
    if not wnids:
        raise InputError("empty: no wnids found", path)
    return wnids


REFERENCES: Registry = Registry("reference class set")
REFERENCES.register("imagenet-1k", imagenet_1k_wnids)
REFERENCES.register("fashion-mnist", lambda: list(FASHION_MNIST_WNIDS))


def reference_wnids(name_or_path: str) -> list[str]:
    """wnids of a named reference (`imagenet-1k`, `fashion-mnist`) or of a wnid file."""
    if name_or_path in REFERENCES:
        return REFERENCES.get(name_or_path)()
    if Path(name_or_path).exists():
        return read_wnid_file(name_or_path)
    raise InputError(
        f"unknown reference {name_or_path!r}: not one of {', '.join(REFERENCES)} and not an existing file"
    )
