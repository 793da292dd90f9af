"""Secrets come from the environment or from files, never from the deployment file, and never
show: an inline secret is refused with one line naming the key and where to put it instead."""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatcher.domain.errors import ConfigError
from dispatcher.service.api import load_deployment
from dispatcher.service.cli import main
from dispatcher.service.settings import load_settings

ZALO = '[zalo]\napp_id = "app"\ntemplate_id = "t"\n'
APP = '[app]\nurl = "https://push.example/v1"\n'
EMAIL = '[email]\nhost = "mail.example"\nsender = "loa@example.vn"\n'
SMPP = '[smpp.viettel]\nhost = "127.0.0.1"\nport = 2775\nsystem_id = "loa"\n'

INLINE = [
    (ZALO + 'secret_key = "inline-zalo-key"\n', "zalo.secret_key", "zalo.secret_key_env"),
    (APP + 'secret = "inline-app-secret"\n', "app.secret", "app.secret_env"),
    (EMAIL + 'password = "inline-mail-pw"\n', "email.password", "email.password_env"),
    (SMPP + 'password = "inline-smpp-pw"\n', "smpp.viettel.password",
     "smpp.viettel.password_env"),
    ('[api]\nzalo_oa_secret = "inline-oa"\n', "api.zalo_oa_secret", "api.zalo_oa_secret_env"),
]


@pytest.mark.parametrize(("text", "key", "env_key"), INLINE)
def test_an_inline_secret_is_refused_naming_the_key_and_where_it_goes(
        text: str, key: str, env_key: str, tmp_path: Path) -> None:
    config = tmp_path / "loa.toml"
    config.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_deployment(config, {})
    message = str(info.value)
    assert message.startswith(f"{config}: {key}: ") and env_key in message
    assert "_FILE" in message and "inline-" not in message
    if not key.startswith("api."):
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            load_settings(config, {})


def test_an_inline_zalo_key_stops_loa_api_with_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "loa.toml"
    config.write_text(ZALO + 'secret_key = "inline-zalo-key"\n', encoding="utf-8")
    assert main(["api", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("loa: error: ")
    assert "zalo.secret_key_env" in err and "Traceback" not in err and "inline-" not in err


def test_a_secret_is_read_from_the_file_its_variable_names(tmp_path: Path) -> None:
    config = tmp_path / "loa.toml"
    config.write_text(ZALO + 'secret_key_env = "LOA_ZALO_SECRET"\n' + APP
                      + 'secret_env = "LOA_APP_SECRET"\n'
                      + '[api]\nzalo_app_id = "app"\nzalo_oa_secret_env = "LOA_OA"\n',
                      encoding="utf-8")
    (tmp_path / "zalo").write_text("from-a-file\n", encoding="utf-8")
    (tmp_path / "oa").write_text("oa-from-a-file", encoding="utf-8")
    env = {"LOA_ZALO_SECRET_FILE": str(tmp_path / "zalo"), "LOA_APP_SECRET": "from-env",
           "LOA_OA_FILE": str(tmp_path / "oa")}
    settings, api = load_deployment(config, env)
    assert settings.zalo is not None and settings.zalo.secret_key == "from-a-file"
    assert settings.app is not None and settings.app.secret == "from-env"
    assert api.zalo_oa_secret == "oa-from-a-file"
    assert "from-a-file" not in repr(settings) and "from-env" not in repr(settings)
    assert "oa-from-a-file" not in repr(api)
    with pytest.raises(ConfigError, match=r"zalo\.secret_key_env: .*LOA_ZALO_SECRET_FILE.*"
                                          r"cannot read"):
        load_deployment(config, {**env, "LOA_ZALO_SECRET_FILE": str(tmp_path / "none")})
    with pytest.raises(ConfigError, match=r"zalo\.secret_key_env: .*LOA_ZALO_SECRET is not "
                                          r"set.*LOA_ZALO_SECRET_FILE"):
        load_deployment(config, {"LOA_APP_SECRET": "x", "LOA_OA": "y"})


def test_app_push_credentials_come_from_the_environment_and_never_show(tmp_path: Path) -> None:
    config = tmp_path / "loa.toml"
    config.write_text(APP + 'headers = {Authorization = "Bearer inline-token"}\n',
                      encoding="utf-8")
    with pytest.raises(ConfigError, match=r"app\.headers\.Authorization: .*app\.headers_env"):
        load_settings(config, {})
    config.write_text(APP + 'secret_env = "LOA_APP_SECRET"\nheaders = {X-App = "smart-qn"}\n'
                      'headers_env = {Authorization = "LOA_APP_AUTH"}\n', encoding="utf-8")
    settings = load_settings(config, {"LOA_APP_SECRET": "hmac-key-1",
                                      "LOA_APP_AUTH": "Bearer push-token-2"})
    assert settings.app is not None
    assert settings.app.headers == {"X-App": "smart-qn", "Authorization": "Bearer push-token-2"}
    shown = repr(settings)
    assert "hmac-key-1" not in shown and "push-token-2" not in shown and "smart-qn" in shown
    with pytest.raises(ConfigError, match=r"app\.headers_env\.Authorization: .*LOA_APP_AUTH"):
        load_settings(config, {"LOA_APP_SECRET": "x"})


@pytest.mark.parametrize("argv", [
    ["level", "show", "--redis", "redis://:hunter2-pw@127.0.0.1:1/0"],
    ["stop", "--show", "--redis", "redis://loa:hunter2-pw@127.0.0.1:1/0"],
    ["campaign", "list", "--redis", "rediss://loa:hunter2-pw@127.0.0.1:1/0"],
])
def test_a_redis_password_on_the_command_line_is_refused(
        argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and err.startswith("loa: error: --redis: ")
    assert "LOA_REDIS_URL" in err and "LOA_REDIS_URL_FILE" in err
    assert "hunter2" not in out + err


def test_the_redis_url_is_read_from_the_file_loa_redis_url_file_names(tmp_path: Path) -> None:
    url_file = tmp_path / "redis-url"
    url_file.write_text("redis://loa:hunter2-pw@10.0.0.5:6379/0\n", encoding="utf-8")
    settings = load_settings(None, {"LOA_REDIS_URL_FILE": str(url_file)})
    assert settings.redis.url == "redis://loa:hunter2-pw@10.0.0.5:6379/0"
    assert "hunter2" not in repr(settings)
    both = {"LOA_REDIS_URL": "redis://10.0.0.6/0", "LOA_REDIS_URL_FILE": str(url_file)}
    assert load_settings(None, both).redis.url == "redis://10.0.0.6/0"  # the variable wins
    with pytest.raises(ConfigError, match=r"LOA_REDIS_URL_FILE: cannot read"):
        load_settings(None, {"LOA_REDIS_URL_FILE": str(tmp_path / "none")})
