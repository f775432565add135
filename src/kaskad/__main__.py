from kaskad.interfaces.cli.main import main

main()
