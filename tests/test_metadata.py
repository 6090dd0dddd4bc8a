"""LICENSE, setup.cfg, CITATION.cff and docs/citation.md agree: one license, one version, one title."""

import configparser
import hashlib
import os
import re

import hsl_tf
from tests import helpers

ROOT = helpers.ROOT
APACHE_2_MD5 = "3b83ef96387f14655fc854ddc3c6bd57"  # the plain text, as absl-py and tensorflow-datasets ship it


def _read(*parts):
    with open(os.path.join(ROOT, *parts), encoding="utf-8") as f:
        return f.read()


def _cff():
    """Top-level ``key: value`` pairs and the preferred-citation title of CITATION.cff (no YAML package)."""
    text = _read("CITATION.cff")
    top = dict(re.findall(r"^([a-z-]+): *\"?([^\"\n]*)\"?$", text, re.M))
    paper = text[text.index("\npreferred-citation:"):]
    top["paper-title"] = re.search(r"^  title: \"([^\"]+)\"$", paper, re.M).group(1)
    return top


def test_license_is_the_apache_2_text_setup_cfg_declares():
    text = _read("LICENSE")
    assert hashlib.md5(text.encode("utf-8")).hexdigest() == APACHE_2_MD5
    meta = configparser.ConfigParser()
    meta.read(os.path.join(ROOT, "setup.cfg"))
    assert meta["metadata"]["license"] == "Apache-2.0"
    assert meta["metadata"]["license_files"].split() == ["LICENSE"]


def test_citation_matches_the_package():
    cff = _cff()
    meta = configparser.ConfigParser()
    meta.read(os.path.join(ROOT, "setup.cfg"))
    assert cff["cff-version"] == "1.2.0"
    assert cff["version"] == meta["metadata"]["version"] == hsl_tf.__version__
    assert cff["license"] == meta["metadata"]["license"]
    assert cff["paper-title"] == "Leveraging Hidden Structure in Self-Supervised Learning"
    assert cff["title"] == f"hsl_tf: {cff['paper-title']} in TensorFlow/Keras"


def test_docs_citation_has_the_same_facts():
    cff, doc = _cff(), _read("docs", "citation.md")
    entries = re.findall(r"```bibtex\n(@\w+\{[^`]+\})\n```", doc)
    assert len(entries) == 2
    paper, software = entries
    assert f"title  = {{{cff['paper-title']}}}" in paper and "author = {Sansone, Emanuele}" in paper
    assert f"version = {{{cff['version']}}}" in software and f"license = {{{cff['license']}}}" in software
    assert cff["paper-title"] in software.replace("{TensorFlow/Keras}", "TensorFlow/Keras")
