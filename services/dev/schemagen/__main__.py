"""`python -m services.schemagen`: what `make schemas` runs."""

import sys

from services.schemagen import main

sys.exit(main())
