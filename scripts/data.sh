#!/usr/bin/env bash
# Sourced by study.sh and test.sh: when MEMNB_DATA is unset, unpack the offline archives of
# ../shared/data (or $MEMNB_SHARED/data) once to /tmp/memnb-data and point MEMNB_DATA there.
if [ -z "${MEMNB_DATA:-}" ]; then
  shared="${MEMNB_SHARED:-$(pwd)/../shared}/data"
  if [ -d "$shared" ]; then
    export MEMNB_DATA=/tmp/memnb-data
    for name in cifar10 cifar100; do
      archive=$(ls "$shared/$name"-*.tar.gz 2>/dev/null | head -1 || true)
      if [ -n "$archive" ] && [ ! -f "$MEMNB_DATA/.$name.unpacked" ]; then
        echo "unpacking $archive to $MEMNB_DATA"
        mkdir -p "$MEMNB_DATA" && tar -xzf "$archive" -C "$MEMNB_DATA" && touch "$MEMNB_DATA/.$name.unpacked"
      fi
    done
  fi
fi
echo "MEMNB_DATA=${MEMNB_DATA:-<unset: named datasets need it, see README>}"
