import sys

from aezoo.cli import main

sys.exit(main())
