# Test stand-in for OpenWrt's /lib/functions/procd.sh: records what the init script asks.
procd_open_instance() { echo "open_instance" >>"$PROCD_LOG"; }
procd_set_param() { echo "set_param $*" >>"$PROCD_LOG"; }
procd_close_instance() { echo "close_instance" >>"$PROCD_LOG"; }
procd_add_reload_trigger() { echo "reload_trigger $*" >>"$PROCD_LOG"; }
