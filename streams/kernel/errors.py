"""Errors an operator can act on. The CLI prints them as one line, without a traceback."""

from __future__ import annotations


class BosaiError(Exception):
    """Base of every error the hub reports to an operator."""


class ConfigError(BosaiError):
    """A configuration or data file is wrong: says which file, where in it, and what was expected."""

    def __init__(self, file: object, problem: str, *, where: str | None = None, expected: str | None = None):
        self.file = str(file)
        self.where = where
        self.problem = problem
        self.expected = expected
        text = self.file
        if where:
            text += f" [{where}]"
        text += f": {problem}"
        if expected:
            text += f" (expected {expected})"
        super().__init__(text)


class SettingsError(BosaiError):
    """A command's settings are wrong: which setting, what it was, and what was expected."""

    def __init__(self, what: str, setting: str, value: object, expected: str):
        self.setting = setting
        super().__init__(f"{what}: {setting} is {value!r} (expected {expected})")
