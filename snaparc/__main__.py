from snaparc.cli import main

raise SystemExit(main())
