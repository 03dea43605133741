"""`python -m services.dev.schemagen`: what `make schemas` runs."""

import sys

from services.dev.schemagen import main

sys.exit(main())
