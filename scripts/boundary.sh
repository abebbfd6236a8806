#!/usr/bin/env bash
# `make boundary`: the crate's layering rules, checked with grep.
#
# 1. src/domain never touches the Worker runtime or reads a clock.
# 2. src/edge is layered one way. A module may use only modules of a lower
#    layer (see LAYER below and the table in src/edge/mod.rs), plus the root
#    helpers of src/edge/mod.rs. Handlers (api, admin, cron) never use each
#    other, not even within their own folder. Other folders may use their own
#    files, but without a cycle (checked with tsort).
# 3. Edge modules name each other as `crate::edge::...`, never `super::`
#    (outside `use super::*` in tests), so that the rules above can be grepped.
set -euo pipefail
cd "$(dirname "$0")/.."

fail=0
complain() { echo "boundary: $*" >&2; fail=1; }

# Lines of code only: comments (//, //!, ///) are skipped, since module docs
# name what they must not use.
code() { grep -nE '' "$1" | grep -vE '^[0-9]+:[[:space:]]*//' || true; }

# ---- 1. the domain -------------------------------------------------------
while IFS= read -r hit; do
  complain "src/domain must not touch the Worker runtime or a clock: $hit"
done < <(grep -rnE '\bworker::|js_sys|web_sys|Date::now|Instant::now|SystemTime::now' src/domain \
           | grep -vE '^[^:]+:[0-9]+:[[:space:]]*//' || true)

# ---- 2. the edge -----------------------------------------------------------
declare -A LAYER=(
  [http]=1 [crypto]=1 [config]=1 [google]=1
  [app]=2
  [store]=3 [objects]=3
  [snapshot]=4
  [upstream]=5 [access]=5
  [billing]=6
  [fake_stream]=7
  [api]=8 [admin]=8 [cron]=8
  [router]=9
)
HANDLERS=" api admin cron "
# Helpers defined in src/edge/mod.rs, usable from every layer.
ROOT_ITEMS=" now_ms int js_int js_opt internal "

# `crate::edge::a` and `crate::edge::{a, b as c}` → a, b (one per line).
names_after() { # $1 = prefix regex, stdin = code
  grep -oE "$1(\{[^}]*\}|[A-Za-z_][A-Za-z0-9_]*)" \
    | sed -E "s/^$1//; s/^\{//; s/\}$//" \
    | tr ',' '\n' \
    | sed -E 's/^[[:space:]]+//; s/[[:space:]].*$//; s/::.*$//' \
    | grep -vE '^$' || true
}

edges=$(mktemp)
trap '[ -n "${BOUNDARY_DEBUG:-}" ] && cat "$edges" >&2; rm -f "$edges"' EXIT

for file in $(find src/edge -name '*.rs' | sort); do
  rel=${file#src/edge/}
  [ "$rel" = "mod.rs" ] && continue
  module=${rel%%/*}
  module=${module%.rs}
  layer=${LAYER[$module]:-}
  if [ -z "$layer" ]; then
    complain "$file: module '$module' has no layer; add it to scripts/boundary.sh and src/edge/mod.rs"
    continue
  fi
  body=$(code "$file")

  while IFS= read -r hit; do
    [ -n "$hit" ] && complain "$file:${hit%%:*}: use crate::edge::... instead of super:: (${hit#*:})"
  done < <(grep -E 'super::' <<<"$body" | grep -vE 'use super::\*;' || true)

  for name in $(names_after 'crate::edge::' <<<"$body" | sort -u); do
    case "$ROOT_ITEMS" in *" $name "*) continue ;; esac
    target=${LAYER[$name]:-}
    if [ -z "$target" ]; then
      complain "$file: 'crate::edge::$name' is not an edge module (name modules one level at a time, no nested braces)"
    elif [ "$name" = "$module" ]; then
      case "$HANDLERS" in *" $module "*)
        complain "$file: a handler uses a handler module (crate::edge::$module)"; continue ;;
      esac
      # Within a folder: record file → file for the cycle check.
      for sub in $(names_after "crate::edge::$module::" <<<"$body" | sort -u); do
        if [ -f "src/edge/$module/$sub.rs" ]; then to="$module/$sub.rs"
        elif [ -f "src/edge/$module/$sub/mod.rs" ]; then to="$module/$sub/mod.rs"
        else to="$module/mod.rs"; fi
        [ "$to" != "$rel" ] && echo "$rel $to" >>"$edges"
      done
      grep -qE "crate::edge::$module([^:]|$)" <<<"$body" \
        && [ "$rel" != "$module/mod.rs" ] && echo "$rel $module/mod.rs" >>"$edges"
    elif [ "$target" -ge "$layer" ]; then
      complain "$file: layer $layer ($module) uses layer $target (crate::edge::$name): the edge is layered one way"
    fi
  done
done

if [ -s "$edges" ] && ! tsort "$edges" >/dev/null 2>&1; then
  complain "an import cycle inside an edge folder: $(tsort "$edges" 2>&1 >/dev/null | tr '\n' ' ')"
fi

if [ "$fail" -ne 0 ]; then
  exit 1
fi
echo "boundary: src/domain is pure; src/edge is layered one way with no cycle"
