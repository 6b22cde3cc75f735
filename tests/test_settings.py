"""One typed Settings object from defaults, options.json, .env and the environment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from photosorter.config import load_settings
from photosorter.errors import ConfigError


def test_environment_beats_dotenv_beats_options_file(tmp_path: Path) -> None:
    options = tmp_path / "options.json"
    options.write_text(json.dumps({"knn_k": 3, "library": "/media/photos", "model_threads": 1}))
    dotenv = tmp_path / ".env"
    dotenv.write_text("PHOTOSORTER_KNN_K=7\nPHOTOSORTER_MODEL_THREADS=4\n")
    settings = load_settings(environ={"PHOTOSORTER_KNN_K": "9"}, dotenv_path=dotenv, options_path=options)
    assert settings.classify.knn_k == 9 and settings.model.threads == 4
    assert settings.library.path == Path("/media/photos")


def test_every_bad_key_is_reported_on_its_own_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"PHOTOSORTER_KNN_K": "zero", "PHOTOSORTER_UNSURE_MARGIN": "2",
                               "PHOTOSORTER_CROP": "stretch"}, dotenv_path=tmp_path / "none")
    keys = sorted(problem.split(":")[0] for problem in caught.value.problems)
    assert keys == ["crop", "knn_k", "unsure_margin"]


def test_categories_are_configurable_and_other_is_always_there(tmp_path: Path) -> None:
    settings = load_settings(environ={"PHOTOSORTER_CATEGORIES": "food, beer,cats"}, dotenv_path=tmp_path / "n")
    assert settings.classify.names == ("food", "beer", "cats", "other")
    cats = settings.classify.categories[2]
    assert cats.title == "Cats" and cats.prompts == ("a photo of cats",)
    assert settings.classify.categories[1].prompts[0] == "a photo of a beer can"


def test_reserved_folder_names_are_refused_as_categories(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="categories"):
        load_settings(environ={"PHOTOSORTER_CATEGORIES": "food,_failed"}, dotenv_path=tmp_path / "n")


def test_invalid_setting_exits_with_one_line_per_key(tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "photosorter", "status"], capture_output=True, text=True,
                            env={"PHOTOSORTER_KNN_K": "-1", "PHOTOSORTER_DATA": str(tmp_path), "PATH": ""},
                            cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == ("photosorter: invalid setting knn_k: must be from 1 to 100 "
                                     "(got '-1' from PHOTOSORTER_KNN_K in the environment)")


def test_secrets_never_show_in_repr_or_errors(tmp_path: Path) -> None:
    settings = load_settings(environ={"APPLE_ID": "me@example.com", "APPLE_PASSWORD": "hunter2-secret",
                                      "PHOTOSORTER_MQTT_PASSWORD": "mqtt-secret"}, dotenv_path=tmp_path / "n")
    assert settings.icloud.apple_id == "me@example.com"
    assert settings.icloud.password.reveal() == "hunter2-secret"
    shown = repr(settings) + str(settings) + f"{settings.icloud.password}"
    assert "hunter2" not in shown and "mqtt-secret" not in shown


def test_mail_replies_default_to_the_digest_recipient(tmp_path: Path) -> None:
    settings = load_settings(environ={"PHOTOSORTER_MAIL_TO": "Me@Example.com"}, dotenv_path=tmp_path / "n")
    assert settings.mail.allowed_senders == ("me@example.com",)


def test_icloud_videos_can_be_switched_off(tmp_path: Path) -> None:
    settings = load_settings(environ={"PHOTOSORTER_ICLOUD_VIDEOS": "false"}, dotenv_path=tmp_path / "n")
    assert settings.icloud.videos is False


def test_an_environment_variable_may_name_the_section_too(tmp_path: Path) -> None:
    settings = load_settings(environ={"PHOTOSORTER_CLASSIFY_KNN_K": "9", "PHOTOSORTER_LIBRARY_DATA": "/srv/data",
                                      "PHOTOSORTER_FACES_ME_THRESHOLD": "0.6"}, dotenv_path=tmp_path / "n")
    assert settings.classify.knn_k == 9 and str(settings.library.data) == "/srv/data"
    assert settings.faces.me_threshold == 0.6


def test_a_bad_value_names_its_setting_and_where_it_came_from(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("PHOTOSORTER_UNSURE_MARGIN=lots\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"PHOTOSORTER_KNN_K": "abc"}, dotenv_path=dotenv)
    assert sorted(caught.value.problems) == [
        "knn_k: must be a whole number (got 'abc' from PHOTOSORTER_KNN_K in the environment)",
        f"unsure_margin: must be a number between 0 and 1 (got 'lots' from PHOTOSORTER_UNSURE_MARGIN in .env "
        f"({dotenv}))"]


def test_an_unknown_photosorter_variable_is_warned_about_with_the_closest_name(tmp_path: Path) -> None:
    settings = load_settings(environ={"PHOTOSORTER_KNN_KK": "7", "PHOTOSORTER_LIBRARY": "/srv/photos"},
                             dotenv_path=tmp_path / "none")
    assert settings.notes == ("PHOTOSORTER_KNN_KK in the environment is not a photosorter setting, ignored; "
                              "did you mean PHOTOSORTER_KNN_K?",)
    assert settings.classify.knn_k == 5


def test_each_setting_knows_where_it_came_from(tmp_path: Path) -> None:
    from photosorter.config import save_settings

    data = tmp_path / "data"
    save_settings(data, {"model": "mobilenet-v2", "library": "/saved/library", "inbox": "/saved/inbox"})
    options = tmp_path / "options.json"
    options.write_text(json.dumps({"inbox": "/options/inbox"}))
    dotenv = tmp_path / ".env"
    dotenv.write_text("PHOTOSORTER_KNN_K=7\n")
    settings = load_settings({"library": "/flag/library"}, environ={"PHOTOSORTER_DATA": str(data)},
                             dotenv_path=dotenv, options_path=options)
    assert settings.model.name == "mobilenet-v2" and settings.library.path == Path("/flag/library")
    assert settings.library.inbox == "/options/inbox"
    assert settings.sources == settings.sources | {
        "model": f"saved ({data / 'settings.json'})", "library": "command line (--library)",
        "inbox": f"options ({options})", "knn_k": f"PHOTOSORTER_KNN_K in .env ({dotenv})",
        "data": "PHOTOSORTER_DATA in the environment", "crop": "default"}
    assert oct((data / "settings.json").stat().st_mode & 0o777) == "0o600"


def test_a_hand_edited_saved_file_is_checked_like_any_other_source(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    saved = data / "settings.json"
    saved.write_text(json.dumps({"libary": "/typo/library", "model": "mobilenet-v2"}))
    settings = load_settings(environ={"PHOTOSORTER_DATA": str(data)}, dotenv_path=tmp_path / "none")
    assert settings.model.name == "mobilenet-v2"
    assert settings.notes == (f"libary in saved ({saved}) is not a saved setting, ignored; did you mean library?",)
    saved.write_text(json.dumps({"library": 5}))
    with pytest.raises(ConfigError) as error:
        load_settings(environ={"PHOTOSORTER_DATA": str(data)}, dotenv_path=tmp_path / "none")
    assert error.value.problems == [f"library: a saved setting must be text; fix it or run photosorter init again "
                                    f"(got 5 from saved ({saved}))"]


def test_settings_that_cannot_be_saved_say_where_and_why(tmp_path: Path) -> None:
    from photosorter.config import save_settings

    (tmp_path / "a-file").write_text("")
    with pytest.raises(ConfigError, match=r"data: cannot save settings in .*a-file/data/settings.json"):
        save_settings(tmp_path / "a-file" / "data", {"model": "mobilenet-v2"})
