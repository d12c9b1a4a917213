import sys

from modekit.cli.parser import main

sys.exit(main())
