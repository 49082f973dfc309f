from andactl.cli.main import main

main()
