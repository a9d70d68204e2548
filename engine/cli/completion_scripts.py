"""The shell code that completes `set`'s FIELD=VALUE words, one function per shell, around the
field table that engine/cli/completion.py derives from the spec's models.

Each function reads the word being completed, `flows.LABEL.` first if given, and offers:
without `=`, the field paths followed by `=`; after `=`, the field's words (`normal`, `true`,
`unlimited`) and, once a number is typed, that number with each of its units (`50ms`).
"""

from __future__ import annotations

import shlex

#: The function each shell's script calls for `set`'s words (shtab's `complete` of it).
SET_WORDS = {
    "bash": "_linkshaper_set_words",
    "zsh": "_linkshaper_set_words",
    "fish": "(__linkshaper_set_words)",
}

_BASH = r"""
# `set`: candidates for the whole word up to the cursor (bash splits it at `=`, so those
# after an `=` are given from it on, as readline replaces only that part).
_linkshaper_set_words() {
  local token="${COMP_LINE:0:COMP_POINT}" base="" rest fields entry word unit
  token="${token##*[[:space:]]}"
  rest="$token"
  fields=("${_linkshaper_link_fields[@]}")
  if [[ $token =~ ^(flows\.[[:alnum:]_]+\.)(.*)$ ]]; then
    base="${BASH_REMATCH[1]}" rest="${BASH_REMATCH[2]}"
    fields=("${_linkshaper_flow_fields[@]}")
  fi
  local candidates=()
  if [[ $rest != *=* ]]; then
    [[ -z $base ]] && candidates+=("flows.")
    for entry in "${fields[@]}"; do candidates+=("$base${entry%%:*}="); done
  else
    local field="${rest%%=*}" value="${rest#*=}" spec words units
    for entry in "${fields[@]}"; do
      [[ ${entry%%:*} == "$field" ]] || continue
      spec="${entry#*:}"
      IFS=, read -ra words <<< "${spec%%;*}"
      IFS=, read -ra units <<< "${spec#*;}"
      for word in "${words[@]}"; do candidates+=("$base$field=$word"); done
      if [[ $value =~ ^[0-9]*\.?[0-9]+$ ]]; then
        for unit in "${units[@]}"; do candidates+=("$base$field=$value$unit"); done
      fi
    done
  fi
  local cut=""
  [[ $token == *=* && $COMP_WORDBREAKS == *=* ]] && cut="${token%=*}="
  for word in "${candidates[@]}"; do
    [[ $word == "$token"* ]] && printf '%s\n' "${word#"$cut"}"
  done
}
"""

#: bash: a field path is followed by its value, not a space.
_BASH_EPILOGUE = r"""
_linkshaper_complete() {
  _shtab_linkshaper "$@"
  local word
  for word in "${COMPREPLY[@]}"; do
    if [[ $word == *= || $word == *. ]]; then compopt -o nospace 2>/dev/null; break; fi
  done
  return 0
}
complete -o bashdefault -F _linkshaper_complete linkshaper
"""

_ZSH = r"""
_linkshaper_set_words() {
  local token=$PREFIX base='' rest=$PREFIX entry word unit spec field value
  local -a fields words units more
  fields=("${_linkshaper_link_fields[@]}")
  if [[ $token =~ '^(flows\.[A-Za-z0-9_]+\.)(.*)$' ]]; then
    base=$match[1] rest=$match[2]
    fields=("${_linkshaper_flow_fields[@]}")
  fi
  if [[ $rest != *=* ]]; then
    [[ -z $base ]] && more=(flows.)
    for entry in "${fields[@]}"; do more+=("$base${entry%%:*}="); done
    compadd -S '' -- "${more[@]}"
    return
  fi
  field=${rest%%=*} value=${rest#*=}
  for entry in "${fields[@]}"; do
    [[ ${entry%%:*} == "$field" ]] || continue
    spec=${entry#*:}
    words=(${(s:,:)spec%%;*}) units=(${(s:,:)spec#*;})
    for word in "${words[@]}"; do more+=("$base$field=$word"); done
    if [[ $value =~ '^[0-9]*\.?[0-9]+$' ]]; then
      for unit in "${units[@]}"; do more+=("$base$field=$value$unit"); done
    fi
  done
  compadd -- "${more[@]}"
}
"""

_FISH = r"""
function __linkshaper_set_words
  set -l token (commandline -ct)
  set -l base ''
  set -l rest $token
  set -l fields $__linkshaper_link_fields
  set -l found (string match -r '^(flows\.[A-Za-z0-9_]+\.)(.*)$' -- $token)
  if test (count $found) -eq 3
    set base $found[2]
    set rest $found[3]
    set fields $__linkshaper_flow_fields
  end
  if not string match -q '*=*' -- $rest
    test -z "$base"; and echo flows.
    for entry in $fields
      echo $base(string split -m1 : -- $entry)[1]=
    end
    return
  end
  set -l field (string split -m1 = -- $rest)[1]
  set -l value (string split -m1 = -- $rest)[2]
  for entry in $fields
    set -l parts (string split -m1 : -- $entry)
    test "$parts[1]" = "$field"; or continue
    set -l spec (string split -m1 ';' -- $parts[2])
    for word in (string split , -- $spec[1])
      test -n "$word"; and echo $base$field=$word
    end
    if string match -qr '^[0-9]*\.?[0-9]+$' -- $value
      for unit in (string split , -- $spec[2])
        test -n "$unit"; and echo $base$field=$value$unit
      end
    end
  end
end
"""

_FUNCTIONS = {"bash": _BASH, "zsh": _ZSH, "fish": _FISH}
EPILOGUE = {"bash": _BASH_EPILOGUE}


def _table(shell: str, name: str, rows: list[tuple[str, str]]) -> str:
    """One shell variable listing `PATH:WORDS;UNITS` per field."""
    entries = " ".join(shlex.quote(f"{path}:{values}") for path, values in rows)
    if shell == "fish":
        return f"set -g __linkshaper_{name}_fields {entries}"
    return f"_linkshaper_{name}_fields=({entries})"


def preamble(shell: str, data: dict[str, list[tuple[str, str]]]) -> str:
    """The field tables and the function that completes `set`'s words, for one shell."""
    tables = "\n".join(_table(shell, name, rows) for name, rows in data.items())
    return tables + "\n" + _FUNCTIONS[shell]
