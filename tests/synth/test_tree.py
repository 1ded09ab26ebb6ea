"""The API context tree: the versioned data meets the paper's scale; malformed files fail clearly."""

import re
from collections import Counter

import pytest
import yaml

from toolkiln.synth.tree import TreeError, load_tree


def test_repo_tree_scale_and_quality(repo_root):
    tree = load_tree(repo_root / "data" / "api_context_tree")
    s = tree.stats()
    # ToolACE: ~30 domains, 390 coarse categories, ~3,400 fine-grained functionalities
    assert s["domains"] >= 30 and s["categories"] >= 390 and s["functionalities"] >= 3000, s
    filler = re.compile(r"(category|functionality|item|leaf)[ _]?\d+$", re.I)
    for d in tree.domains:
        leaves = [f for c in d.categories for f in c.functionalities]
        dups = [f for f, n in Counter(leaves).items() if n > 1]
        assert not dups, (d.slug, dups[:3])
        for c in d.categories:
            assert not filler.search(c.name) and not filler.search(c.slug), c
            for f in c.functionalities:
                assert 2 <= len(f.split()) <= 20 and not filler.search(f), f


def test_tiny_tree_loads(tiny_tree):
    assert tiny_tree.stats() == {"domains": 2, "categories": 4, "functionalities": 14}
    assert [d.slug for d in tiny_tree.domains] == ["finance", "weather"]  # sorted by file name: deterministic


def test_tree_cut_to_named_domains(tiny_tree):
    assert [d.slug for d in tiny_tree.only(["weather"]).domains] == ["weather"]
    assert tiny_tree.only([]) is tiny_tree
    with pytest.raises(TreeError, match=r"unknown domain slugs \['sports'\]; the tree has \['finance', 'weather'\]"):
        tiny_tree.only(["weather", "sports"])


@pytest.mark.parametrize(
    "content, match",
    [
        ("domain: X\nslug: x\n", r"missing key 'categories'"),
        ("domain: X\nslug: Bad Slug\ncategories: []\n", r"slug: 'Bad Slug' is not a lowercase"),
        ("domain: X\nslug: x\ncategories: []\n", r"categories: empty"),
        (
            "domain: X\nslug: x\ncategories:\n  - {name: A, slug: a, functionalities: []}\n",
            r"categories\[0\]\.functionalities",
        ),
        (
            "domain: X\nslug: x\ncategories:\n  - {name: A, slug: a, functionalities: [ok thing], extra: 1}\n",
            r"unknown keys \['extra'\]",
        ),
        (
            "domain: X\nslug: x\ncategories:\n  - {name: A, slug: a, functionalities: [f g]}\n  - {name: B, slug: a, functionalities: [h i]}\n",
            r"duplicate category slug",
        ),
        ("- just\n- a list\n", r"expected a mapping"),
        ("domain: [unclosed\n", r"invalid YAML"),
    ],
)
def test_malformed_tree_file(tmp_path, content, match):
    (tmp_path / "bad.yaml").write_text(content)
    with pytest.raises(TreeError, match=match) as e:
        load_tree(tmp_path)
    assert "bad.yaml" in str(e.value)


def test_duplicate_domain_slug(tiny_tree_dir):
    data = yaml.safe_load((tiny_tree_dir / "weather.yaml").read_text())
    (tiny_tree_dir / "weather2.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(TreeError, match="already defined"):
        load_tree(tiny_tree_dir)


def test_empty_folder(tmp_path):
    with pytest.raises(TreeError, match="no \\*.yaml"):
        load_tree(tmp_path)
