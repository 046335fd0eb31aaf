# Sourced, not run: two "hosts" on one machine for the two-host examples
# (Examples/pd-two-hosts*, through Examples/common.sh) and scripts/bench-scheduler-fleet.sh.
# Two "hosts" on one machine: network namespaces $NETNS_NAME-p (address $SUBNET.1) and
# $NETNS_NAME-d ($SUBNET.2) on a private LAN, a bridge in a third namespace ($NETNS_NAME-lan),
# joined by veth pairs to both and to this namespace ($SUBNET.254, link $NETNS_NAME-r, whose
# LAN end is named after what runs here). Needs root (ip netns, ip link; Debian iproute2).
#
# two_host_lan NAME SUBNET HERE: builds it (removing leftovers of an earlier run first).
two_host_lan() {
    local name=$1 subnet=$2 here=$3 side
    remove_two_host_lan "$name"
    ip netns add "$name-lan"
    ip -n "$name-lan" link add name br0 type bridge
    ip -n "$name-lan" link set br0 up
    ip link add name "$name-r" type veth peer name "$here" netns "$name-lan"
    ip addr add "$subnet.254/24" dev "$name-r"
    ip link set "$name-r" up
    ip -n "$name-lan" link set "$here" master br0 up
    for side in p d; do
        ip netns add "$name-$side"
        ip -n "$name-lan" link add name "to-$side" type veth peer name eth0 netns "$name-$side"
        ip -n "$name-lan" link set "to-$side" master br0 up
        ip -n "$name-$side" addr add "$subnet.$(host_number "$side")/24" dev eth0
        ip -n "$name-$side" link set eth0 up
        ip -n "$name-$side" link set lo up
    done
}

# remove_two_host_lan NAME: deletes the namespaces and the link (what is missing is skipped).
remove_two_host_lan() {
    local name=$1 namespace
    for namespace in "$name-p" "$name-d" "$name-lan"; do ip netns del "$namespace" 2>/dev/null || true; done
    ip link del "$name-r" 2>/dev/null || true
}

# host_number SIDE: the last byte of side p's (1) or d's (2) address.
host_number() { [[ $1 == p ]] && echo 1 || echo 2; }
