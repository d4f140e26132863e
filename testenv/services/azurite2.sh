#!/usr/bin/env bash
# A second Azurite instance (the same install as testenv/services/azurite.sh, port 10001, its own
# data). Azurite serves requests on one thread, and each blob lookup scans every blob of the
# account (its LokiJS metadata store narrows by account only: 44% of its CPU in a profile of the
# conformance suite), so one instance is the slowest part of the test run. The object backend's
# Azure suite spreads its stores over both instances (PINVAULT_AZURE_ENDPOINTS): two processes
# use both cores and each scans only its own stores' blobs. Sourced by testenv/pvenv.

AZURITE2_START_TIMEOUT=$AZURITE_START_TIMEOUT
AZURITE2_PORT=10001

azurite2_install() { azurite_install; }
azurite2_start() { azurite_start_instance azurite2 "$AZURITE2_PORT"; }
azurite2_health() { azurite_health "$AZURITE2_PORT"; }
azurite2_smoke() { azurite_blob --port "$AZURITE2_PORT" smoke; }

# Both instances' endpoints; the tests take the first one's account, key and container, which
# the two share.
azurite2_env() {
    echo "export PINVAULT_AZURE_ENDPOINTS=\"$(azurite_endpoint) $(azurite_endpoint "$AZURITE2_PORT")\""
}
