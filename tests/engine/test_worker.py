"""The Celery app a worker runs: its schedule and settings, as `approval worker|beat` get them."""

from __future__ import annotations

from engine import worker
from engine.config import Settings


def test_a_worker_process_gets_the_very_settings_of_its_parent(tmp_path):
    """What `approval run` and the tests hand a child process rebuilds the same settings."""
    settings = Settings.from_env(
        {"APPROVAL_INSTANCE_DIR": str(tmp_path), "APPROVAL_DEFER_STEPS": "no"},
        sweep_after=2.5,
    )
    assert settings.defer_steps is False
    assert Settings.from_env(settings.to_env()) == settings


def test_beat_looks_for_timers_and_sweeps_and_the_embedded_broker_is_tidied(tmp_path):
    """The schedule follows the settings; only the SQLite broker needs tidying."""
    embedded = Settings.from_env({"APPROVAL_INSTANCE_DIR": str(tmp_path)})
    schedule = worker.make_celery(embedded).conf.beat_schedule
    assert schedule["fire-due-timers"]["task"] == "approval.fire_due_timers"
    assert schedule["fire-due-timers"]["schedule"] == embedded.timer_interval
    assert schedule["sweep"]["schedule"] == embedded.sweep_interval
    assert "tidy-broker" in schedule
    redis = Settings.from_env(
        {"APPROVAL_INSTANCE_DIR": str(tmp_path), "APPROVAL_BROKER_URL": "redis://127.0.0.1/15"}
    )
    app = worker.make_celery(redis)
    assert "tidy-broker" not in app.conf.beat_schedule
    assert app.conf.task_acks_late and app.conf.worker_prefetch_multiplier == 1
