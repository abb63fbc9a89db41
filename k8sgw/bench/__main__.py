import sys

from k8sgw.bench.run import main

sys.exit(main())
