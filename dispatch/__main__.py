import sys

from dispatch.cli.main import main

sys.exit(main())
