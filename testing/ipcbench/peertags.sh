#!/bin/sh
# Prints the build tags of the ipcbench peers whose C libraries (headers
# and pkg-config files of their Debian -dev packages) are installed here.
# A peer left out still gets a row, which says what is missing and fails
# the run.
tags=""
[ -f /usr/include/iceoryx/v2.0.3/iceoryx_binding_c/api.h ] && tags="$tags,ipcbench_iceoryx"
pkg-config --exists libzmq 2>/dev/null && tags="$tags,ipcbench_libzmq"
pkg-config --exists CycloneDDS 2>/dev/null && tags="$tags,ipcbench_cyclonedds"
echo "${tags#,}"
