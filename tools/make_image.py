"""Build an update image (FirmwareManagement) from the checkout this runs in:

    python -m tools.make_image --version 9.9.9 --out FILE [--architecture noarch]

The format is docs/firmware-images.md's; the station checks it with
firmware.images.verify_image before installing anything.
"""

import argparse
import os
import sys

from firmware.images import NOARCH, build_image

CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.make_image",
                                     description="Build an update image from this checkout.")
    parser.add_argument("--version", required=True, help="the firmwareVersion of the image")
    parser.add_argument("--out", required=True, help="the image file to write")
    parser.add_argument("--architecture", default=NOARCH,
                        help="machine the image runs on (default %s: any)" % NOARCH)
    args = parser.parse_args(argv)
    try:
        manifest = build_image(CHECKOUT, args.version, args.out, args.architecture)
    except (ValueError, OSError) as e:
        print("make_image: error: %s" % e, file=sys.stderr)
        return 2
    print("%s: version %s, %s, %d files" % (args.out, manifest["version"],
                                             manifest["architecture"], len(manifest["files"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
