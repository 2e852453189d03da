"""Shell completion for ``wasmjob``: commands, subcommands and options, read from the parser.

``eval "$(wasmjob completion bash)"`` (or ``zsh``, through bash completion emulation).
"""

from __future__ import annotations

import argparse


def _words(parser: argparse.ArgumentParser) -> tuple[list[str], dict[str, list[str]]]:
    """The parser's options, and for each command path ("run", "extensions add") its words."""
    tree: dict[str, list[str]] = {}

    def walk(p: argparse.ArgumentParser, path: str) -> list[str]:
        words: list[str] = []
        for action in p._actions:
            words += [o for o in action.option_strings if o.startswith("--")]
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    words.append(name)
                    tree[f"{path} {name}".strip()] = walk(child, f"{path} {name}".strip())
        return words

    return walk(parser, ""), tree


def script(parser: argparse.ArgumentParser, shell: str) -> str:
    """A completion script for ``shell`` (``bash`` or ``zsh``)."""
    top, tree = _words(parser)
    cases = "\n".join(f'        "{path}") words="{" ".join(words)}" ;;' for path, words in sorted(tree.items()))
    body = f"""_wasmjob() {{
    local cur path words i
    cur="${{COMP_WORDS[COMP_CWORD]}}"
    path=""
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${{COMP_WORDS[i]}}" in -*) ;; *)
            if [ -n "$(_wasmjob_words "${{path:+$path }}${{COMP_WORDS[i]}}")" ] || [ -z "$path" ]; then
                path="${{path:+$path }}${{COMP_WORDS[i]}}"
            fi ;;
        esac
    done
    words="$(_wasmjob_words "$path")"
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}}
_wasmjob_words() {{
    local words=""
    case "$1" in
        "") words="{" ".join(top)}" ;;
{cases}
    esac
    echo "$words"
}}
complete -F _wasmjob wasmjob"""
    if shell == "zsh":
        return "autoload -U +X bashcompinit && bashcompinit\n" + body
    return body
