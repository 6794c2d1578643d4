import sys

from bench.fuzz.run import main

sys.exit(main())
