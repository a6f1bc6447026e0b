use std::collections::BTreeMap;

use serde_json::json;

use super::*;

fn try_with(body: &str, template: &str) -> Result<String, TemplateError> {
    let context = json!({"connectionId": "L0SM9cOFvHcCIhw=", "identity": {"sourceIp": "1.2.3.4"},
                         "authorizer": {"principalId": "me"}});
    let variables = BTreeMap::from([("env".to_string(), "test".to_string())]);
    let headers = vec![("X-Token".to_string(), "abc".to_string())];
    let query = vec![("q".to_string(), "1".to_string())];
    let path = vec![("id".to_string(), "7".to_string())];
    render(
        template,
        &TemplateInput {
            body,
            path: &path,
            query: &query,
            headers: &headers,
            context: &context,
            stage_variables: &variables,
        },
    )
}

fn with(body: &str, template: &str) -> String {
    match try_with(body, template) {
        Ok(text) => text,
        Err(e) => panic!("{template:?} failed: {e}"),
    }
}

#[test]
fn input_references_read_the_body() {
    let body = r#"{"action":"echo","data":{"n":1,"s":"x"}}"#;
    assert_eq!(with(body, "$input.body"), body);
    assert_eq!(with(body, "$input.json('$.data')"), r#"{"n":1,"s":"x"}"#);
    assert_eq!(with(body, r#"$input.json("$.data.s")"#), r#""x""#);
    assert_eq!(with(body, "$input.path('$.data.s')"), "x");
    assert_eq!(with(body, "$input.path('$.data').n"), "1");
    assert_eq!(with(body, "[$input.path('$.missing')]"), "[]");
    assert_eq!(with(body, "${input.path('$.action')}-beta"), "echo-beta");
    // `$input.path` hands over Java objects, which render as Java does.
    assert_eq!(with(body, "$input.path('$.data')"), "{n=1, s=x}");
    assert_eq!(with("", "$input.json('$')"), "{}");
}

#[test]
fn context_stage_variables_and_params() {
    assert_eq!(
        with(
            "",
            r#"{"id":"$context.connectionId","ip":"$context.identity.sourceIp"}"#
        ),
        r#"{"id":"L0SM9cOFvHcCIhw=","ip":"1.2.3.4"}"#
    );
    assert_eq!(with("", "$context.authorizer.principalId"), "me");
    assert_eq!(with("", "[$context.nothing]"), "[]");
    assert_eq!(with("", "$stageVariables.env"), "test");
    assert_eq!(
        with(
            "",
            "$input.params('x-token')/$input.params('q')/$input.params('id')"
        ),
        "abc/1/7"
    );
    let all = "#set($all = $input.params())#foreach($type in $all.keySet())$type:#foreach($n in $all.get($type).keySet())$n=$util.escapeJavaScript($all.get($type).get($n))#if($foreach.hasNext),#end#end;#end";
    assert_eq!(
        with("", all),
        "header:X-Token=abc;path:id=7;querystring:q=1;"
    );
}

#[test]
fn utilities_escape_and_encode() {
    let body = r#"{"s":"a \"q\"/b"}"#;
    assert_eq!(
        with(body, "$util.escapeJavaScript($input.path('$.s'))"),
        r#"a \"q\"\/b"#
    );
    assert_eq!(with("", "$util.base64Encode('hi')"), "aGk=");
    assert_eq!(with("", "$util.base64Decode('aGk=')"), "hi");
    assert_eq!(with("", "$util.urlEncode('a b&c')"), "a+b%26c");
    assert_eq!(with("", "$util.urlDecode('a+b%26c')"), "a b&c");
    assert_eq!(with("", "$util.parseJson('{\"a\":[1,2]}').a"), "[1, 2]");
    assert_eq!(with("", "$util.parseJson('{\"a\":[1,2]}').a.size()"), "2");
}

#[test]
fn other_text_stays_as_written() {
    assert_eq!(with("", r#"{"statusCode": 200}"#), r#"{"statusCode": 200}"#);
    assert_eq!(
        with("", r"\$context.connectionId costs $5"),
        "$context.connectionId costs $5"
    );
    assert_eq!(
        with("", "$other.thing and $!{input.path('$.x')}! $!nothing"),
        "$other.thing and ! "
    );
    assert_eq!(with("", "color: #fff; #macro"), "color: #fff; #macro");
}

#[test]
fn set_and_if_choose_what_renders() {
    let body = r#"{"n": 3, "kind": "b", "flag": false}"#;
    let template = "#set($n = $input.path('$.n'))#if($n > 5)big#elseif($n >= 3 && $input.path('$.kind') == 'b')mid#{else}small#end";
    assert_eq!(with(body, template), "mid");
    assert_eq!(with(body, "#if(!$input.path('$.flag'))off#end"), "off");
    assert_eq!(
        with(body, "#if($input.path('$.missing'))yes#{else}no#end"),
        "no"
    );
    // `$n` is unset in this template: null is false.
    assert_eq!(with(body, "#if($n == 3 || $x)a#end#if(not $n)b#end"), "b");
    assert_eq!(
        with(
            body,
            "#set($n = $input.path('$.n'))#if($n eq 3 and $n != '4')a#end"
        ),
        "a"
    );
    // Numbers equal their text, as Velocity compares them.
    assert_eq!(
        with(body, "#if($input.path('$.n') == \"3\")same#end"),
        "same"
    );
    assert_eq!(
        with(
            "",
            "#set($a = 7)#set($b = $a * 2 + 1)#set($c = $b / 2)#set($d = $b % 4)$b $c $d"
        ),
        "15 7 3"
    );
    assert_eq!(
        with(
            "",
            r#"#set($who = "$context.authorizer.principalId!")#set($s = 'lit $x')$who $s"#
        ),
        "me! lit $x"
    );
    assert_eq!(with("", "#set($s = 'a' + 1)$s"), "a1");
    assert_eq!(
        with(
            "",
            "#set($context.responseOverride.status = 400)$context.responseOverride.status"
        ),
        "400"
    );
}

#[test]
fn foreach_iterates_lists_maps_and_ranges() {
    let body = r#"[{"id":1,"type":"dog","price":249.99},{"id":2,"type":"cat","price":124.99}]"#;
    let template = r#"#set($inputRoot = $input.path('$'))
[
#foreach($elem in $inputRoot)
  {
    "description" : "Item $elem.id is a $elem.type.",
    "askingPrice" : $elem.price
  }#if($foreach.hasNext),#end

#end
]"#;
    assert_eq!(
        with(body, template),
        "[\n  {\n    \"description\" : \"Item 1 is a dog.\",\n    \"askingPrice\" : 249.99\n  },\n\n  {\n    \"description\" : \"Item 2 is a cat.\",\n    \"askingPrice\" : 124.99\n  }\n\n]"
    );
    assert_eq!(
        with(
            "",
            "#foreach($i in [1..5])#if($i == 4)#break#end$velocityCount:$i $foreach.index,#end"
        ),
        "1:1 0,2:2 1,3:3 2,"
    );
    assert_eq!(with("", "#foreach($i in [3..1])$i#end"), "321");
    assert_eq!(
        with(
            r#"{"m":{"a":1,"b":2}}"#,
            "#foreach($v in $input.path('$.m'))$v#end"
        ),
        "12"
    );
    assert_eq!(
        with(
            r#"{"m":{"a":1,"b":2}}"#,
            "#foreach($e in $input.path('$.m').entrySet())$e.key=$e.value;#end"
        ),
        "a=1;b=2;"
    );
    // The loop variable is the outer one again after the loop.
    assert_eq!(with("", "#set($i = 'x')#foreach($i in [1])#end$i"), "x");
    assert_eq!(with("", "#foreach($i in $nothing)a#end"), "");
}

#[test]
fn lists_maps_and_methods() {
    assert_eq!(
        with("", "#set($m = {})#set($ignored = $m.put('a', 1))#set($l = [])#set($ignored = $l.add('x'))$m $l $l[0] $m['a']"),
        "{a=1} [x] x 1"
    );
    assert_eq!(
        with("", "#set($s = ' Hello, World ')$s.trim().toLowerCase() $s.length() $s.contains('World') $s.substring(1, 6) $s.replace('l', 'L')"),
        "hello, world 14 true Hello  HeLLo, WorLd "
    );
    assert_eq!(
        with(
            "",
            "#set($s = 'a,b,,c,,')#foreach($p in $s.split(','))[$p]#end"
        ),
        "[a][b][][c]"
    );
    assert_eq!(
        with(
            "",
            "#set($l = [1, 'two', true])$l.size() $l.get(1) $l.contains('two') $l.isEmpty()"
        ),
        "3 two true false"
    );
}

#[test]
fn comments_and_directive_lines_leave_nothing() {
    assert_eq!(with("", "a## a comment\nb"), "a\nb");
    assert_eq!(with("", "a\n## a comment\nb"), "a\nb");
    assert_eq!(with("", "a#* block\ncomment *#b"), "ab");
    assert_eq!(with("", "#[[$not #if]]#"), "$not #if");
    assert_eq!(
        with("", "{\n  #set($x = 1)\n  \"x\": $x\n}"),
        "{\n  \"x\": 1\n}"
    );
}

#[test]
fn templates_that_do_not_parse_are_errors() {
    for bad in [
        "#if($a)never closed",
        "#end",
        "#foreach($a $list)#end",
        "#set($a 1)",
        "#set(1 = 1)",
        "$input.json('$.x'",
        "#if($a == )x#end",
        "#* open comment",
        "${input.body",
        "#foreach($a in [1])#else#end",
        "#if('unterminated)#end",
    ] {
        assert!(
            matches!(try_with("", bad), Err(TemplateError::Syntax { .. })),
            "{bad:?} parsed"
        );
    }
    let Err(TemplateError::Syntax { line, column, .. }) = try_with("", "ok\n  #end") else {
        panic!("#end alone parsed");
    };
    assert_eq!((line, column), (2, 7));
}

#[test]
fn runaway_templates_stop() {
    assert!(matches!(
        try_with("", "#foreach($a in [1..100000000])#end"),
        Err(TemplateError::Runtime(_))
    ));
}
