"""Both agents read the same config keys: the example file, the errors (naming the key)."""

from __future__ import annotations

from pathlib import Path

import pytest
from meshmon_agent.config import ConfigError, load

from tests.agent.router import DATA, ROOT, Router

EXAMPLE = ROOT / "agents" / "agent.example.toml"


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Router:
    return Router(tmp_path_factory.mktemp("config"))


def test_example_config_works_in_both_agents(router: Router) -> None:
    python = load(EXAMPLE)
    done = router.sh("-c", str(EXAMPLE), "--once", "--print")
    assert done.returncode == 0, done.stderr
    import json

    report = json.loads(done.stdout)
    assert report["node"] == python.node  # the sanitised host name, in both
    assert report["interval_s"] == python.interval_s == 30


@pytest.mark.parametrize(("text", "where"), [
    ('[mqtt]\nhots = "x"\n', "mqtt.hots: unknown key"),
    ('[mqtt]\nport = "1883"\n', "mqtt.port: expected int"),
    ("[collect]\nwifi = 1\n", "collect.wifi: expected bool"),
    ('[info]\ntags = "roof"\n', "info.tags: expected a list of strings"),
    ('interval_s = "5"\n', "interval_s: expected a number"),
    ('node = "bad node"\n', "node"),
    ('node = "f81a67a5e9c1"\n', "holds a MAC or IP address"),
    ('node = "10.0.0.1"\n', "holds a MAC or IP address"),
    ("[info]\nlat = 1.0\n", "lat and lon go together"),
    ("interval_s = 0\n", "interval_s: must be in (0, 86400]"),
    ("[mqtt]\nport = 70000\n", "mqtt.port: must be 1..65535"),
    ('[collect.peer_names]\n"10.0.0.2" = "10.0.0.2"\n', "is not a node id"),
    ("[wifi]\n", "unknown key"),
])
def test_both_agents_name_the_bad_key(router: Router, text: str, where: str) -> None:
    bad = router.config(text, "bad.toml")
    with pytest.raises(ConfigError, match=where.replace("(", r"\(").replace("]", r"\]")):
        load(bad)
    done = router.sh("-c", str(bad), "--once", "--print")
    assert done.returncode == 2 and done.stdout == ""
    assert where in done.stderr, done.stderr


@pytest.mark.parametrize(("text", "where"), [
    ('[mqtt]\nhost = "a"\nhost = "b"\n', "line 3: mqtt.host: defined twice"),
    ('[info]\ntags = [\n  "roof",\n]\n', "line 2: info.tags: arrays must be on one line"),
    ("mqtt = { port = 1 }\n", "line 1: mqtt: inline tables are not supported"),
    ('[mqtt]\nhost = "open\n', "line 2: mqtt.host: unterminated string"),
])
def test_sh_agent_names_the_line_of_what_it_cannot_read(
    router: Router, text: str, where: str
) -> None:
    done = router.sh("-c", str(router.config(text, "subset.toml")), "--once", "--print")
    assert done.returncode == 2 and where in done.stderr, done.stderr


def test_sh_agent_reads_strings_as_toml_does(tmp_path: Path) -> None:
    import json
    import tomllib

    router = Router(tmp_path, captures={
        ("wg", "show", "all", "dump"): DATA / "routing" / "netdiff" / "wg-dump.txt"})
    text = ("node = 'sh-q' # a literal string, then a comment\n[collect]\nwifi = false\n"
            "[collect.peer_names]\n'pLj2T3b1YYugGIx238T+tD9WYRgtEIpcRSfW6kkJsnE=' = \"gw-1\"\n"
            '"w6xev2DEpaxqgGIOVh8Ggmmr8BYsTEnSpy/3EQ9DfQw=" = "gw-2"  # basic string key\n')
    names = tomllib.loads(text)["collect"]["peer_names"]
    done = router.sh("-c", str(router.config(text, "strings.toml")), "--once", "--print")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["node"] == "sh-q"
    peers = [link["peer"] for link in report["links"]]
    assert peers[:2] == [names["pLj2T3b1YYugGIx238T+tD9WYRgtEIpcRSfW6kkJsnE="], "gw-2"]
