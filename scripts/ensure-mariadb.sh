#!/usr/bin/env bash
# MariaDB's server for the database-extraction tests (they start their own mariadbd in a temp
# folder; the package's service is not used). Optional: on failure the tests skip, saying why.
set -uo pipefail
if command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ]; then exit 0; fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "mariadbd not found and apt-get is not available: the MariaDB extraction tests will skip." >&2
  exit 0
fi
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "Installing MariaDB server binaries with apt-get (for the extraction tests)..."
# The package's own service must not start: tests start mariadbd themselves.
printf '#!/bin/sh\nexit 101\n' > /tmp/chute-policy-rc.d && chmod +x /tmp/chute-policy-rc.d
if [ ! -e /usr/sbin/policy-rc.d ]; then $SUDO cp /tmp/chute-policy-rc.d /usr/sbin/policy-rc.d; CLEAN=1; fi
$SUDO apt-get update -qq || true
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends mariadb-server >/dev/null \
  || echo "could not install mariadb-server: the MariaDB extraction tests will skip." >&2
if [ "${CLEAN:-0}" = 1 ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi
exit 0
