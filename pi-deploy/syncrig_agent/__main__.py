import sys

from syncrig_agent.main import main

sys.exit(main())
