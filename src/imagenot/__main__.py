from imagenot.cli import main

raise SystemExit(main())
