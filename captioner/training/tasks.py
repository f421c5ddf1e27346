"""Importing this module registers every task with `captioner.config.TASKS`."""

from captioner.training import caption_task  # noqa: F401
from captioner.training import vqa_task  # noqa: F401
