#!/usr/bin/env bash
# Makes the README's console pictures again: the README's first command on the example config,
# 30 s of dig/curl/Kinesis traffic, both consoles in headless Chromium (light, dark, phone).
# Needs dig, curl and chromium (apt-get install -y bind9-dnsutils curl chromium).
set -euo pipefail
cd "$(dirname "$0")/../.."
EDGEWISE_SCREENSHOTS="$PWD/docs/console" \
    cargo test --test it console_screenshots -- --exact \
    console_screenshots::console_pictures_from_the_readme_first_command_with_traffic
ls -l docs/console/*.png
