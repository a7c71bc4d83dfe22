# Sourced by the other scripts: finds a JDK >= 25 and exports it as JAVA_HOME, so that nobody has to
# set it by hand. Order: JAVA_HOME if it already is one, then every JDK under /usr/lib/jvm (newest first).

LOOMVISOR_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOOMVISOR_MIN_JAVA=25

_java_feature() { # prints the feature version of the JDK at $1, or nothing
  local rel="$1/release" v
  [ -x "$1/bin/java" ] && [ -x "$1/bin/javac" ] || return 0
  if [ -f "$rel" ]; then
    v=$(sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$rel")
  else
    v=$("$1/bin/java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = \([0-9]*\).*/\1/p')
  fi
  printf '%s' "$v"
}

_find_jdk() {
  local v cand
  if [ -n "${JAVA_HOME:-}" ]; then
    v=$(_java_feature "$JAVA_HOME")
    if [ -n "$v" ] && [ "$v" -ge "$LOOMVISOR_MIN_JAVA" ]; then printf '%s' "$JAVA_HOME"; return 0; fi
  fi
  for cand in $(ls -d /usr/lib/jvm/*/ 2>/dev/null | sort -rV); do
    cand="${cand%/}"
    v=$(_java_feature "$cand")
    if [ -n "$v" ] && [ "$v" -ge "$LOOMVISOR_MIN_JAVA" ]; then printf '%s' "$cand"; return 0; fi
  done
  return 1
}

if ! LOOMVISOR_JDK="$(_find_jdk)"; then
  echo "loomvisor: no JDK ${LOOMVISOR_MIN_JAVA} or newer found (looked at JAVA_HOME and /usr/lib/jvm/*)." >&2
  echo "loomvisor: install one, e.g. 'apt-get install temurin-25-jdk' or 'openjdk-25-jdk', then run this again." >&2
  exit 1
fi
export JAVA_HOME="$LOOMVISOR_JDK"
export PATH="$JAVA_HOME/bin:$PATH"
# The Maven Wrapper keeps its Maven under ~/.m2/wrapper; Maven itself then runs on JAVA_HOME.
LOOMVISOR_MVN="$LOOMVISOR_ROOT/mvnw"
LOOMVISOR_JVM_OPTIONS="$LOOMVISOR_ROOT/scripts/jvm.options"
