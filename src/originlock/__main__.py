from originlock.cli.main import main

raise SystemExit(main())
