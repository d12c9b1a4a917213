"""argparse types of the command line: each parses one option's text and, on a bad value, says
the option's field, the value and what is allowed."""

from __future__ import annotations

import argparse

from modekit.config import AUTO_YES_NO, MAX_ALPHA, MAX_SEED

MAX_SEEDS = 1000


def integer(name: str, low: int, high: int, word: str | None = None):
    """An argparse type: an integer in [low, high] (or the one `word`, e.g. 'auto', as given); the
    message names the option's field and what is allowed."""
    allowed = (f"{word!r} or " if word else "") + f"an integer between {low} and {high}"

    def parse(text: str) -> int | str:
        if word is not None and text == word:
            return text
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name}={text!r} is not allowed: {allowed}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{name}={value} is not allowed: {allowed}")
        return value

    return parse


def number(name: str, low: float, high: float, low_open: bool = False):
    """An argparse type: a finite number in [low, high] ((low, high] with low_open)."""
    allowed = f"a finite number {'>' if low_open else '>='} {low:g} and <= {high:g}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name}={text!r} is not allowed: {allowed}") from None
        if not (low < value if low_open else low <= value) or not value <= high:  # NaN and inf fail here
            raise argparse.ArgumentTypeError(f"{name}={value} is not allowed: {allowed}")
        return value

    return parse


def alphas(text: str) -> list[float]:
    parse = number("alpha", 0.0, MAX_ALPHA)
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None
    if not values:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed: give at least one alpha (e.g. 0,0.01,0.1)")
    for value in values:
        parse(repr(value))
    no_repeats("alpha", values)
    return values


def no_repeats(what: str, values: list) -> None:
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise argparse.ArgumentTypeError(f"{what} {', '.join(f'{v:g}' for v in repeated)} repeated: give each {what} once")


def seeds(text: str) -> list[int]:
    """Every --seeds: '3' -> seeds [0, 1, 2] (a count); '0,4,7' -> [0, 4, 7]; '5,' -> [5]."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a seed count (3 = seeds 0,1,2) or a comma-separated list of seeds") from None
    if len(values) == 1 and "," not in text:
        if not 1 <= values[0] <= MAX_SEEDS:
            raise argparse.ArgumentTypeError(f"{text!r} is not allowed: a seed count between 1 and {MAX_SEEDS}, or a list such as 0,4,7")
        return list(range(values[0]))
    if not values:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed: give a seed count (3 = seeds 0,1,2) or a list such as 0,4,7")
    if len(values) > MAX_SEEDS or any(not 0 <= v <= MAX_SEED for v in values):
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed: at most {MAX_SEEDS} seeds, each between 0 and {MAX_SEED}")
    no_repeats("seed", values)
    return values


def auto_yes_no(name: str, words: tuple[str, ...] = tuple(AUTO_YES_NO)):
    """An argparse type: auto, yes or no (the kit's one spelling of a three-way switch) -> "auto", True,
    False; `words` narrows it (a two-way switch: ("yes", "no"))."""

    def parse(text: str):
        if text not in words:
            raise argparse.ArgumentTypeError(f"{name}={text!r} is not allowed: one of {', '.join(words)}")
        return AUTO_YES_NO[text]

    return parse
