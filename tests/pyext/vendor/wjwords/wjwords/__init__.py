"""A tiny pure-Python library, listed as a dependency of the test component."""


def shout(text: str) -> str:
    return text.upper() + "!"
