"""Settings: precedence, defaults, validation, tolerant spellings, secrets (adapters.runtime.settings)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.runtime.dotenv import DotenvError, parse_dotenv
from adapters.runtime.settings import SETTINGS, SettingsError, configuration_markdown, load_settings, settings_help

ROOT = Path(__file__).resolve().parents[2]


def load(tmp_path: Path, env: dict[str, str] | None = None, **kwargs: object):  # type: ignore[no-untyped-def]
    return load_settings(environ=env or {}, cwd=tmp_path, token_factory=lambda: "generated-token-xyz", **kwargs)  # type: ignore[arg-type]


def test_defaults(tmp_path: Path) -> None:
    s = load(tmp_path)
    assert (s.host, s.port) == ("127.0.0.1", 8080)
    assert s.state_url == "sqlite:///./kiro2api-state.db"
    assert s.region == "us-east-1"
    assert s.max_request_body_bytes == 20 * 1024 * 1024
    assert s.ping_interval == 15.0
    assert s.token_selection_strategy == "optimal"
    assert s.log_level == "INFO" and s.log_format == "text" and s.log_file is None
    assert s.disable_stream is False and s.max_concurrent_sessions == 0
    assert s.auth_token_json is None and s.model_map == {}
    assert s.request_timeout == 600.0 and s.stream_request_timeout == 1800.0
    assert s.upstream_base() == "https://q.us-east-1.amazonaws.com"
    assert s.refresh_url("social", "eu-central-1") == "https://prod.eu-central-1.auth.desktop.kiro.dev/refreshToken"
    assert s.refresh_url("IdC") == "https://oidc.us-east-1.amazonaws.com/token"


def test_generated_client_token(tmp_path: Path) -> None:
    s = load(tmp_path)
    assert s.client_token == "generated-token-xyz" and s.client_token_generated
    s = load(tmp_path, {"KIRO_CLIENT_TOKEN": "mine-1234567890abcdef"})
    assert s.client_token == "mine-1234567890abcdef" and not s.client_token_generated


def test_default_token_factory_is_random(tmp_path: Path) -> None:
    a = load_settings(environ={}, cwd=tmp_path).client_token
    b = load_settings(environ={}, cwd=tmp_path).client_token
    assert a != b and len(a) >= 30


def test_precedence_flags_env_dotenv(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("PORT=1111\nHOST=10.0.0.1\nLOG_LEVEL=debug\n")
    s = load(tmp_path, {"PORT": "2222"}, overrides={"PORT": "3333", "HOST": None})
    assert s.port == 3333  # flag wins
    assert s.host == "10.0.0.1"  # .env when neither flag nor environment
    assert s.log_level == "DEBUG"
    assert load(tmp_path, {"PORT": "2222"}).port == 2222


def test_explicit_env_file(tmp_path: Path) -> None:
    other = tmp_path / "prod.env"
    other.write_text('export KIRO_CLIENT_TOKEN="from file"\n')
    (tmp_path / ".env").write_text("KIRO_CLIENT_TOKEN=ignored\n")
    with pytest.raises(SettingsError, match="spaces"):
        load(tmp_path, env_file=other)
    other.write_text("KIRO_CLIENT_TOKEN='from-file' # comment\n")
    assert load(tmp_path, env_file=other).client_token == "from-file"
    with pytest.raises(SettingsError, match="does not exist"):
        load(tmp_path, env_file=tmp_path / "missing.env")


@pytest.mark.parametrize("raw", ["warn", "WARNING", "Warn", "warning"])
def test_log_level_spellings(tmp_path: Path, raw: str) -> None:
    assert load(tmp_path, {"LOG_LEVEL": raw}).log_level == "WARNING"


@pytest.mark.parametrize(("raw", "value"), [("true", True), ("1", True), ("YES", True), ("On", True), ("false", False), ("0", False), ("no", False), ("OFF", False)])
def test_booleans(tmp_path: Path, raw: str, value: bool) -> None:
    assert load(tmp_path, {"DISABLE_STREAM": raw}).disable_stream is value


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("PORT", "eighty", "PORT: expected an integer"),
        ("PORT", "70000", "PORT: must be between"),
        ("LOG_LEVEL", "loud", "LOG_LEVEL"),
        ("LOG_FORMAT", "xml", "LOG_FORMAT"),
        ("DISABLE_STREAM", "maybe", "DISABLE_STREAM"),
        ("MAX_CONCURRENT_SESSIONS", "-1", "MAX_CONCURRENT_SESSIONS"),
        ("REQUEST_TIMEOUT_MINUTES", "0", "REQUEST_TIMEOUT_MINUTES"),
        ("PING_INTERVAL_SECONDS", "nan", "PING_INTERVAL_SECONDS"),
        ("KIRO_MODEL_MAP", "[1]", "KIRO_MODEL_MAP"),
        ("KIRO_MODEL_MAP", "{bad", "KIRO_MODEL_MAP: the value is not valid JSON"),
        ("KIRO_MODEL_MAP", '{"a": 1}', "KIRO_MODEL_MAP: 'a' must map"),
        ("KIRO_UPSTREAM_URL", "ftp://x", "KIRO_UPSTREAM_URL"),
        ("KIRO_UPSTREAM_URL", "https://{host}.x", "placeholder"),
        ("KIRO_STATE", "postgres://x", "KIRO_STATE"),
        ("KIRO_REGION", "mars", "KIRO_REGION"),
        ("TOKEN_SELECTION_STRATEGY", "random", "TOKEN_SELECTION_STRATEGY"),
        ("TLS_CERT_FILE", "cert.pem", "TLS_CERT_FILE and TLS_KEY_FILE must be set together"),
    ],
)
def test_invalid_values_name_the_variable(tmp_path: Path, name: str, value: str, fragment: str) -> None:
    with pytest.raises(SettingsError) as info:
        load(tmp_path, {name: value})
    assert fragment in str(info.value)


def test_all_problems_reported_at_once(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as info:
        load(tmp_path, {"PORT": "x", "LOG_LEVEL": "y"})
    assert len(info.value.problems) == 2


def test_tolerant_values(tmp_path: Path) -> None:
    s = load(tmp_path, {"TOKEN_SELECTION_STRATEGY": "Round-Robin", "LOG_FORMAT": "JSON", "PORT": " 9000 ",
                        "KIRO_UPSTREAM_URL": "http://127.0.0.1:9999/", "REQUEST_TIMEOUT_MINUTES": "0.5"})
    assert s.token_selection_strategy == "round_robin" and s.log_format == "json" and s.port == 9000
    assert s.upstream_base("eu-west-1") == "http://127.0.0.1:9999"
    assert s.request_timeout == 30.0


def test_model_map(tmp_path: Path) -> None:
    s = load(tmp_path, {"KIRO_MODEL_MAP": '{"my-model": "CLAUDE_SONNET_4_5_20250929_V1_0"}'})
    assert s.model_map == {"my-model": "CLAUDE_SONNET_4_5_20250929_V1_0"}


ACCOUNTS = '[{"auth": "Social", "refreshToken": "rt-very-secret-value-1234"}]'


def test_auth_token_json_path_and_file(tmp_path: Path) -> None:
    assert load(tmp_path, {"KIRO_AUTH_TOKEN": ACCOUNTS}).auth_token_json == ACCOUNTS
    (tmp_path / "accounts.json").write_text(ACCOUNTS)
    assert load(tmp_path, {"KIRO_AUTH_TOKEN": "accounts.json"}).auth_token_json == ACCOUNTS
    assert load(tmp_path, {"KIRO_AUTH_TOKEN_FILE": str(tmp_path / "accounts.json")}).auth_token_json == ACCOUNTS


def test_auth_token_errors_never_echo_the_value(tmp_path: Path) -> None:
    for env in ({"KIRO_AUTH_TOKEN": "rt-very-secret-value-1234"}, {"KIRO_AUTH_TOKEN": '[{"refreshToken": "rt-very-secret-value-1234"'}):
        with pytest.raises(SettingsError) as info:
            load(tmp_path, env)
        assert "rt-very-secret" not in str(info.value)
        assert "KIRO_AUTH_TOKEN" in str(info.value)
    with pytest.raises(SettingsError, match="both set"):
        load(tmp_path, {"KIRO_AUTH_TOKEN": ACCOUNTS, "KIRO_AUTH_TOKEN_FILE": "x"})
    with pytest.raises(SettingsError, match="cannot read"):
        load(tmp_path, {"KIRO_AUTH_TOKEN_FILE": str(tmp_path / "none.json")})


def test_client_token_file(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("file-token-0123456789\n")
    s = load(tmp_path, {"KIRO_CLIENT_TOKEN_FILE": str(tmp_path / "token")})
    assert s.client_token == "file-token-0123456789" and not s.client_token_generated
    with pytest.raises(SettingsError, match="both set"):
        load(tmp_path, {"KIRO_CLIENT_TOKEN_FILE": str(tmp_path / "token"), "KIRO_CLIENT_TOKEN": "x"})
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(SettingsError, match="empty"):
        load(tmp_path, {"KIRO_CLIENT_TOKEN_FILE": str(tmp_path / "empty")})


def test_proxy(tmp_path: Path) -> None:
    s = load(tmp_path, {"HTTPS_PROXY": "user:p4ssw0rd-secret@proxy.local:3128"})
    assert s.https_proxy == "http://user:p4ssw0rd-secret@proxy.local:3128"
    assert load(tmp_path, {"https_proxy": "socks5://proxy:1080"}).https_proxy == "socks5://proxy:1080"
    with pytest.raises(SettingsError) as info:
        load(tmp_path, {"HTTPS_PROXY": "gopher://user:p4ssw0rd-secret@x"})
    assert "p4ssw0rd" not in str(info.value)


def test_tls_files(tmp_path: Path) -> None:
    (tmp_path / "c.pem").write_text("x")
    (tmp_path / "k.pem").write_text("x")
    s = load(tmp_path, {"TLS_CERT_FILE": "c.pem", "TLS_KEY_FILE": "k.pem"})
    assert s.tls_enabled
    with pytest.raises(SettingsError, match="TLS_KEY_FILE: 'nope.pem' does not exist"):
        load(tmp_path, {"TLS_CERT_FILE": "c.pem", "TLS_KEY_FILE": "nope.pem"})


def test_repr_masks_secrets(tmp_path: Path) -> None:
    s = load(tmp_path, {"KIRO_CLIENT_TOKEN": "client-secret-abcdefghijkl", "KIRO_AUTH_TOKEN": ACCOUNTS,
                        "HTTPS_PROXY": "http://user:p4ssw0rd-secret-value@proxy:3128"})
    text = repr(s) + str(s)
    for secret in ("client-secret-abcdefghijkl", "rt-very-secret-value-1234", "p4ssw0rd-secret-value"):
        assert secret not in text
    assert "port=8080" in text


def test_docs_are_current() -> None:
    assert (ROOT / "docs" / "configuration.md").read_text() == configuration_markdown(), (
        "regenerate docs/configuration.md from adapters.runtime.settings.configuration_markdown()"
    )


def test_every_issue_variable_is_documented() -> None:
    names = {spec.env for spec in SETTINGS}
    required = {
        "PORT", "HOST", "KIRO_CLIENT_TOKEN", "KIRO_CLIENT_TOKEN_FILE", "KIRO_AUTH_TOKEN", "KIRO_AUTH_TOKEN_FILE",
        "TOKEN_SELECTION_STRATEGY", "KIRO_STATE", "KIRO_REGION", "LOG_LEVEL", "LOG_FORMAT", "LOG_FILE",
        "MAX_TOOL_DESCRIPTION_LENGTH", "REQUEST_TIMEOUT_MINUTES", "STREAM_REQUEST_TIMEOUT_MINUTES",
        "SERVER_READ_TIMEOUT_MINUTES", "SERVER_WRITE_TIMEOUT_MINUTES", "MAX_CONCURRENT_SESSIONS", "DISABLE_STREAM",
        "HTTPS_PROXY", "KIRO_UPSTREAM_URL", "KIRO_SOCIAL_REFRESH_URL", "KIRO_IDC_REFRESH_URL", "TLS_CERT_FILE",
        "TLS_KEY_FILE", "MAX_REQUEST_BODY_BYTES", "PING_INTERVAL_SECONDS", "KIRO_MODEL_MAP",
    }
    assert required <= names
    help_text = settings_help()
    assert all(name in help_text for name in names)


def test_dotenv_parser() -> None:
    text = (
        "# comment\n\nA=1\nexport B = two words # trailing\nC=\"x\\ny\"\nD='lit\\n'\n"
        'E="multi\nline"\nF=\nG=a#b\n'
    )
    assert parse_dotenv(text) == {"A": "1", "B": "two words", "C": "x\ny", "D": "lit\\n", "E": "multi\nline", "F": "", "G": "a#b"}
    for bad in ("NOEQUALS", "1A=x", 'A="open', "A='x' junk"):
        with pytest.raises(DotenvError) as info:
            parse_dotenv(bad + "\n", source="f.env")
        assert "f.env:1" in str(info.value)


_NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,15}", fullmatch=True)
_VALUES = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=40)


def _quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return '"' + escaped.replace("\t", "\\t") + '"'


@given(st.dictionaries(_NAMES, _VALUES, max_size=8), st.booleans())
def test_dotenv_round_trip(values: dict[str, str], export: bool) -> None:
    """Any value written double-quoted with the usual escapes reads back exactly."""
    prefix = "export " if export else ""
    text = "# generated\n" + "".join(f"{prefix}{name}={_quote(value)}\n" for name, value in values.items())
    assert parse_dotenv(text) == values
