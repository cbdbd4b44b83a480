import sys

from stilts_tui.cli import main

sys.exit(main())
