import sys

from flagctl.cli import main

sys.exit(main())
