%% An Erlang node that keeps binaries (off-heap, refcounted: ERTS's binary
%% allocator takes them from carriers it maps itself) at a steady rate,
%% for SECONDS. Prints "rss T BYTES" at the start and at the end.
%% Usage: erl -noshell -s beam_binary_leak main RATE SECONDS
-module(beam_binary_leak).
-export([main/1]).

rss() ->
    {ok, Text} = file:read_file("/proc/self/statm"),
    [_, Pages | _] = binary:split(Text, <<" ">>, [global]),
    binary_to_integer(Pages) * 4096.

now_s(T0) -> (erlang:monotonic_time(microsecond) - T0) / 1.0e6.

loop(T0, Rate, Seconds, Made, Kept) ->
    T = now_s(T0),
    case T >= Seconds of
        true -> {Made, Kept};
        false ->
            Target = trunc(Rate * T),
            {Made2, Kept2} = fill(Made, Target, Kept),
            timer:sleep(2),
            loop(T0, Rate, Seconds, Made2, Kept2)
    end.

fill(Made, Target, Kept) when Made >= Target -> {Made, Kept};
fill(Made, Target, Kept) ->
    Bin = binary:copy(<<Made:64, 0:(8 * 1000)>>),
    fill(Made + 1, Target, [Bin | Kept]).

main([RateA, SecondsA]) ->
    Rate = list_to_integer(atom_to_list(RateA)),
    Seconds = list_to_integer(atom_to_list(SecondsA)),
    T0 = erlang:monotonic_time(microsecond),
    io:format("rss ~.3f ~B~n", [0.0, rss()]),
    {Made, Kept} = loop(T0, Rate, Seconds, 0, []),
    io:format("rss ~.3f ~B~n", [now_s(T0), rss()]),
    io:format("kept ~B ~B~n", [Made, length(Kept)]),
    init:stop().
