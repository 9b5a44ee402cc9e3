import sys

from neuralrg.cli import main

sys.exit(main())
