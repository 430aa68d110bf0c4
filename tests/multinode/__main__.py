from tests.multinode.scenario import main

raise SystemExit(main())
