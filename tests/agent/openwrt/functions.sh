# Test stand-in for OpenWrt's /lib/functions.sh: the UCI config_* functions an init script
# calls, over a UCI file in $UCI_CONFIG_DIR (UCI files are shell: config/option/list lines).
CONFIG_NUM=0
CONFIG_SECTIONS=
config() {
	CONFIG_NUM=$((CONFIG_NUM + 1))
	CONFIG_SECTION=${2:-cfg$CONFIG_NUM}
	CONFIG_SECTIONS="$CONFIG_SECTIONS $CONFIG_SECTION"
	eval "CONFIG_${CONFIG_SECTION}_TYPE=\$1"
}
option() { eval "CONFIG_${CONFIG_SECTION}_$1=\$2"; }
list() {
	eval "n=\$((\${CONFIG_${CONFIG_SECTION}_$1_LENGTH:-0} + 1))"
	eval "CONFIG_${CONFIG_SECTION}_$1_ITEM$n=\$2; CONFIG_${CONFIG_SECTION}_$1_LENGTH=$n"
}
config_load() { . "$UCI_CONFIG_DIR/$1"; }
config_get() { eval "v=\${CONFIG_$2_$3:-\$4}"; eval "$1=\$v"; }
config_get_bool() {
	config_get v "$2" "$3" "$4"
	case $v in 1 | on | true | yes | enabled) v=1 ;; 0 | off | false | no | disabled) v=0 ;; *) v=$4 ;; esac
	eval "$1=\$v"
}
config_list_foreach() {
	eval "n=\${CONFIG_$1_$2_LENGTH:-0}"
	i=1
	while [ $i -le $n ]; do eval "item=\$CONFIG_$1_$2_ITEM$i"; $3 "$item"; i=$((i + 1)); done
}
config_foreach() {
	for s in $CONFIG_SECTIONS; do eval "t=\$CONFIG_${s}_TYPE"; [ "$t" = "$2" ] && $1 "$s"; done
}
