import sys

from k8sgw.cli import main

sys.exit(main())
